"""Leaves its process group three ways, then serves as an echo server:
joins the grader's own process group, forks a child that calls setsid(), and
double-forks a grandchild (its parent exits at once) that keeps running."""
import os, time
import common

opts = common.args()
sock = common.listen(opts)
try:
    # The grader is our parent: move into its process group.
    os.setpgid(0, os.getpgid(os.getppid()))
except OSError:
    pass
if os.fork() == 0:
    os.setsid()
    while True:
        time.sleep(3600)
if os.fork() == 0:
    if os.fork() != 0:
        os._exit(0)
    os.setsid()
    while True:
        time.sleep(3600)
common.echo_forever(sock)

"""Starts a sleeper with an empty environment in a session of its own (so neither its
process group nor the grader's environment marker finds it), then serves as an echo.
Only a cgroup per check catches it; without one it is left running (see hostile.rs)."""
import os
import common

sock = common.listen(common.args())
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        # argv[0] names this program, so a search for leftovers finds the sleeper.
        os.execve("/bin/sleep", ["hostile/wipes_env.py-sleeper", "3600"], {})
    os._exit(0)
common.echo_forever(sock)

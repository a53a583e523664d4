"""Lab 8 daemon that writes its pid file, then turns it into a FIFO (and serves)."""
import os
import common

opts = common.args()
sock = common.listen(opts)
if "pidfile" in opts:
    os.unlink(opts["pidfile"])
    os.mkfifo(opts["pidfile"])
common.echo_forever(sock, lambda c: (c.sendall(b"socklab-daemon %d\n" % os.getpid()), c.close()))

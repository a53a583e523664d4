"""Forks a child that keeps the listening socket and serves; the parent exits."""
import os, sys
import common

sock = common.listen(common.args())
if os.fork() != 0:
    os._exit(0)
common.echo_forever(sock)

"""Ignores SIGTERM and SIGINT, and serves each client with a long pause before echoing."""
import signal, time
import common

signal.signal(signal.SIGTERM, signal.SIG_IGN)
signal.signal(signal.SIGINT, signal.SIG_IGN)
sock = common.listen(common.args())


def slow(conn):
    time.sleep(3600)


common.echo_forever(sock, slow)

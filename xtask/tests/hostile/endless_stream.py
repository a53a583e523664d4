"""Sends an endless stream to every client (a thread each), reading nothing."""
import socket, threading
import common


def stream(conn):
    chunk = b"x" * 65536
    try:
        while True:
            conn.sendall(chunk)
    except OSError:
        pass


sock = common.listen(common.args())
if sock.type == socket.SOCK_DGRAM:
    while True:
        data, peer = sock.recvfrom(70000)
        while peer:
            sock.sendto(b"x" * 60000, peer)
common.echo_forever(sock, lambda c: threading.Thread(target=stream, args=(c,), daemon=True).start())

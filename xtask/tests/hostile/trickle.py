"""Reads 64 KiB from a client every 30 s and echoes it: a trickle."""
import threading, time
import common


def trickle(conn):
    try:
        while True:
            data = conn.recv(65536)
            if not data:
                break
            conn.sendall(data)
            time.sleep(30)
    except OSError:
        pass


sock = common.listen(common.args())
common.echo_forever(sock, lambda c: threading.Thread(target=trickle, args=(c,), daemon=True).start())

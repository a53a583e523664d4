"""Floods stdout with 1 GiB, then serves as an echo server."""
import os
import common

sock = common.listen(common.args())
chunk = b"O" * (1 << 20)
for _ in range(1024):
    os.write(1, chunk)
common.echo_forever(sock)

"""Floods stderr with 1 GiB, then serves as an echo server."""
import os, sys
import common

sock = common.listen(common.args())
chunk = b"E" * (1 << 20)
for _ in range(1024):
    os.write(2, chunk)
os.write(2, b"\nthe last words of a flood\n")
common.echo_forever(sock)

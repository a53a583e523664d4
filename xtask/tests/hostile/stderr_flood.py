"""Floods stderr with 256 MiB (4,096 times the 64 KiB the grader keeps, more than its memory cap
in the hostile suite), then serves as an echo server."""
import os, sys
import common

sock = common.listen(common.args())
chunk = b"E" * (1 << 20)
for _ in range(256):
    os.write(2, chunk)
os.write(2, b"\nthe last words of a flood\n")
common.echo_forever(sock)

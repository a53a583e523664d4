"""Floods stdout with 256 MiB (4,096 times the 64 KiB the grader keeps, more than its memory cap
in the hostile suite), then serves as an echo server."""
import os
import common

sock = common.listen(common.args())
chunk = b"O" * (1 << 20)
for _ in range(256):
    os.write(1, chunk)
common.echo_forever(sock)

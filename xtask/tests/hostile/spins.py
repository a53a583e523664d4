"""Listens, then spins the CPU for ever without accepting."""
import common

sock = common.listen(common.args())
n = 0
while True:
    n += 1

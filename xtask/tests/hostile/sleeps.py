"""Listens, then sleeps for ever without accepting."""
import time
import common

sock = common.listen(common.args())
while True:
    time.sleep(3600)

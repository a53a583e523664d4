"""Accepts every client and then neither reads nor writes."""
import common

held = []
sock = common.listen(common.args())
common.echo_forever(sock, held.append)

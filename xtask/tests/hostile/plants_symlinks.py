"""Lab 5: plants, in the folder of its --path, symlinks that point outside it (under the
names the grader writes) and an immutable file (root only), then serves as an echo."""
import fcntl, os, struct
import common

CANARY = os.environ.get("HOSTILE_CANARY", "/tmp/socklab-hostile-canary")
FS_IOC_GETFLAGS, FS_IOC_SETFLAGS, IMMUTABLE = 0x80086601, 0x40086602, 0x10

opts = common.args()
sock = common.listen(opts)
folder = os.path.dirname(opts.get("path") or opts.get("pidfile") or "")
if folder:
    for name in ("precious.txt", "daemon.grader-tmp", "grader.sock", "client.sock", "x"):
        try:
            os.symlink(os.path.join(CANARY, name), os.path.join(folder, name))
        except OSError:
            pass
    stuck = os.path.join(folder, "immutable")
    try:
        with open(stuck, "w") as f:
            f.write("try to remove me\n")
            flags = struct.unpack("i", fcntl.ioctl(f.fileno(), FS_IOC_GETFLAGS, b"\0" * 4))[0]
            fcntl.ioctl(f.fileno(), FS_IOC_SETFLAGS, struct.pack("i", flags | IMMUTABLE))
    except OSError:
        pass
common.echo_forever(sock)

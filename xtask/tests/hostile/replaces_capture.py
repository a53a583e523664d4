"""Tries to replace its own output capture with a FIFO and a symlink to /dev/zero.

Before the grader read pipes, stdout and stderr were files in the check's scratch
folder, and this made the grader hang (FIFO) or read 2 GB (/dev/zero). With pipes there
is no file to replace: this program now only litters the scratch folder with FIFOs and
links named like the old capture files, which the grader must ignore and remove."""
import os
import common

opts = common.args()
sock = common.listen(opts)
folders = {os.path.dirname(opts[k]) for k in ("path", "pidfile") if k in opts}
for target in ("/proc/self/fd/1", "/proc/self/fd/2"):
    try:
        path = os.readlink(target)
        if path.startswith("/"):
            folders.add(os.path.dirname(path))
    except OSError:
        pass
for folder in folders:
    for i in range(1, 6):
        for name, kind in ((f"server__{i}.stdout", "fifo"), (f"server__{i}.stderr", "zero")):
            path = os.path.join(folder, name)
            try:
                os.unlink(path)
            except OSError:
                pass
            try:
                if kind == "fifo":
                    os.mkfifo(path)
                else:
                    os.symlink("/dev/zero", path)
            except OSError:
                pass
common.echo_forever(sock)

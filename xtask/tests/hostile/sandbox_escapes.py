"""Tries every escape from the sandbox once at start-up, writes down how each went, then
serves as a lab 1 server (greets, echoes) so that it is graded as usual.

The test (tests/sandbox.rs) names its targets in the environment of the command line
(`env SANDBOX_LOG=... python3 sandbox_escapes.py`): a copy of a repository with a canary
file, a root-only secret, the grader's pid (in a file), and a Unix datagram socket where this program sends its
findings (the one way out of a read-only file system and a private network). The test
then checks that every target is unchanged; the findings say what the program saw (its
uid, pids, cwd, environment, network interfaces and namespace)."""
import json
import os
import signal
import socket
import sys
import time

import common

found = {}


def attempt(name, action):
    try:
        found[name] = "ESCAPED: " + str(action())
    except Exception as e:  # every way of being stopped counts as stopped
        found[name] = "stopped: " + type(e).__name__ + ": " + str(e)


repo = os.environ.get("SANDBOX_REPO", "")
secret = os.environ.get("SANDBOX_SECRET", "")
log = os.environ.get("SANDBOX_LOG", "")
grader_pid_file = os.environ.get("SANDBOX_GRADER_PID_FILE", "")


def grader_pid():
    # The test writes the grader's pid down (it is the parent's pid without a PID
    # namespace; inside one, the parent is out of sight: getppid() is 0).
    if grader_pid_file:
        with open(grader_pid_file) as f:
            return int(f.read().strip())
    return os.getppid()


def write_repo():
    with open(os.path.join(repo, "canary.txt"), "a") as f:
        f.write("overwritten by a submission\n")
    return "appended to canary.txt"


def new_file_in_repo():
    with open(os.path.join(repo, "planted.txt"), "w") as f:
        f.write("planted\n")
    return "planted.txt created"


def delete_in_repo():
    os.unlink(os.path.join(repo, "canary.txt"))
    return "canary.txt deleted"


def edit_self():
    with open(os.path.abspath(__file__), "a") as f:
        f.write("# edited\n")
    return "edited its own source in the repository"


def read_secret():
    with open(secret) as f:
        return f.read()


def kill_grader():
    pid = grader_pid()
    if pid <= 0:  # kill(0) would be our own process group
        raise ProcessLookupError("no grader pid to aim at")
    os.kill(pid, signal.SIGKILL)
    return "SIGKILL sent to the grader (pid %d)" % pid


def write_elsewhere():
    # World-writable on most machines: a place to leave files for another submission.
    with open("/var/tmp/socklab-sandbox-planted", "w") as f:
        f.write("planted\n")
    return "/var/tmp/socklab-sandbox-planted created"


def plant_in_tmp():
    # Allowed, but in a /tmp of its own: the machine's /tmp must not see it.
    with open("/tmp/socklab-sandbox-planted", "w") as f:
        f.write("planted\n")
    return "/tmp/socklab-sandbox-planted created"


def fill_scratch():
    # Eight files of 16 MiB: each under the file-size cap, 128 MiB in all.
    chunk = b"x" * (1 << 20)
    written = 0
    try:
        for n in range(8):
            with open("filler%d" % n, "wb") as f:
                for _ in range(16):
                    f.write(chunk)
                    f.flush()
                    written += 1
    except OSError as e:
        found["fill_scratch_mib"] = written
        raise
    found["fill_scratch_mib"] = written
    return "%d MiB written" % written


def hoard_memory():
    # 3 GiB of writable memory at once, more than the sandbox's cap (2 GiB).
    hoard = bytearray(3 << 30)
    return "allocated %d MiB" % (len(hoard) >> 20)


def leave_behind():
    # A sleeper with no environment (no marker) in a session of its own.
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            os.execve("/bin/sleep", ["sandbox_escapes.py-sleeper", "3600"], {})
        os._exit(0)
    os.wait()
    return "left a sleeper behind (if the grader does not end it)"


for name, action in [
    ("write_repo", write_repo),
    ("new_file_in_repo", new_file_in_repo),
    ("delete_in_repo", delete_in_repo),
    ("edit_self", edit_self),
    ("read_secret", read_secret),
    ("kill_grader", kill_grader),
    ("fill_scratch", fill_scratch),
    ("write_elsewhere", write_elsewhere),
    ("plant_in_tmp", plant_in_tmp),
    ("hoard_memory", hoard_memory),
]:
    attempt(name, action)
# The fillers stay: the grader must remove them with the scratch folder.
leave_behind()

with open("/proc/self/net/dev") as f:
    found["interfaces"] = sorted(
        line.split(":")[0].strip() for line in f.read().splitlines()[2:]
    )
found["net_namespace"] = os.readlink("/proc/self/ns/net")
found["pid"] = os.getpid()
found["ppid"] = os.getppid()
found["proc_pids"] = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
found["sees_grader"] = os.path.exists("/proc/%d" % grader_pid())
with open("/proc/self/status") as f:
    found["capabilities"] = next(
        line.split()[1] for line in f if line.startswith("CapEff:")
    )
found["uid"] = os.getuid()
found["gid"] = os.getgid()
found["cwd"] = os.getcwd()
found["env"] = dict(os.environ)

if log:
    out = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    out.sendto(json.dumps(found).encode(), log)
    out.close()

opts = common.args()
sock = common.listen(opts)
common.echo_forever(sock)

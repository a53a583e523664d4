"""Shared by the hostile programs: parse the socklab CLI contract and listen.

Each hostile program is a *server* that honours just enough of the contract
(`ROLE --host H --port P`, lab 5's `--path P`, lab 8's `daemon --pidfile F`) to be
graded, and then misbehaves in one way. They exist to prove the grader survives them.
"""
import os
import socket
import sys


def args():
    """The role and the options after it, as a dict."""
    argv = sys.argv[1:]
    opts = {"role": argv[0] if argv else ""}
    i = 1
    while i < len(argv):
        if argv[i].startswith("--") and i + 1 < len(argv) and not argv[i + 1].startswith("--"):
            opts[argv[i][2:]] = argv[i + 1]
            i += 2
        else:
            opts[argv[i][2:]] = True
            i += 1
    return opts


def listen(opts):
    """A listening socket as the contract asks: Unix at --path, else TCP at --host/--port.
    Writes lab 8's pid file (pid;port) when --pidfile is given."""
    if "path" in opts:
        path = opts["path"]
        kind = socket.SOCK_DGRAM if opts["role"].startswith("dgram") else socket.SOCK_STREAM
        sock = socket.socket(socket.AF_UNIX, kind)
        sock.bind(path)
        if kind == socket.SOCK_STREAM:
            sock.listen(16)
    else:
        host = opts.get("host", "127.0.0.1")
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, int(opts.get("port", 0))))
        sock.listen(16)
    if "pidfile" in opts:
        port = sock.getsockname()[1]
        with open(opts["pidfile"], "w") as f:
            f.write(f"{os.getpid()};{port}\n")
    print(f"listening on {sock.getsockname()}", flush=True)
    return sock


def daemon_answer(conn):
    """Lab 8's handshake: one line in, `socklab-daemon PID` out."""
    try:
        conn.recv(256)
        conn.sendall(b"socklab-daemon %d\n" % os.getpid())
    except OSError:
        pass
    conn.close()


def echo_forever(sock, serve=None):
    """Accepts clients one after another and echoes each (or runs `serve(conn)`);
    a lab 8 daemon answers the handshake instead of echoing."""
    if serve is None and args()["role"] == "daemon":
        serve = daemon_answer
    if sock.type == socket.SOCK_DGRAM:
        while True:
            data, peer = sock.recvfrom(70000)
            if peer:
                sock.sendto(data, peer)
    while True:
        conn, _ = sock.accept()
        if serve is not None:
            serve(conn)
            continue
        try:
            while True:
                data = conn.recv(65536)
                if not data:
                    break
                conn.sendall(data)
        except OSError:
            pass
        conn.close()

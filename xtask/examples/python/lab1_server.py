#!/usr/bin/env python3
"""Lab 1 in Python: proof that the grader takes any language that honours the contract.

    cargo xtask grade lab1 --cmd "python3 xtask/examples/python/lab1_server.py"

The contract: `PROGRAM server --host H --port P [--backlog N]`. The steps are the same
as in the Rust reference: socket, setsockopt(SO_REUSEADDR), bind, listen, then for each
client accept, send the greeting, recv once, send it back, close.
"""

import argparse
import errno
import socket
import sys
import time

REASONS = {
    errno.EADDRINUSE: "address already in use",
    errno.EACCES: "permission denied: ports below 1024 are privileged",
    errno.EADDRNOTAVAIL: "address not available on this machine",
}


def fail(step, err):
    reason = REASONS.get(err.errno, err.strerror or str(err))
    print(f"lab1: error: {step} failed: {reason}", file=sys.stderr)
    sys.exit(1)


def main():
    parser = argparse.ArgumentParser(prog="lab1")
    parser.add_argument("role", choices=["server"])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--backlog", type=int, default=5)
    args = parser.parse_args()

    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6:
        # Dual-stack: with --host :: take IPv4 clients too, whatever the system default.
        listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    try:
        listener.bind((args.host, args.port))
    except OSError as err:
        fail(f"bind({args.host}:{args.port})", err)
    listener.listen(args.backlog)
    print(f"listening on {args.host}:{args.port}", flush=True)

    while True:
        try:
            connection, peer = listener.accept()
        except OSError as err:
            # EMFILE/ENFILE: no descriptor for the new connection. Not fatal: they come
            # back as connections close. Say so, pause (the client is still queued, so an
            # immediate retry would spin), and accept again.
            print(f"lab1: accept(): {err}", file=sys.stderr, flush=True)
            if err.errno in (errno.EMFILE, errno.ENFILE):
                time.sleep(0.1)
            continue
        print(f"client {peer[0]}:{peer[1]} connected", flush=True)
        try:
            connection.sendall(b"hello\n")
            data = connection.recv(1000)
            connection.sendall(data)
        except OSError as err:
            print(f"lab1: client {peer[0]}:{peer[1]}: {err}", file=sys.stderr, flush=True)
        finally:
            connection.close()


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""A stand-in for kubectl: ``port-forward`` listens on a free port after a short delay and
says so as kubectl does; anything else prints its argv as JSON (``fail`` anywhere: exit 1)."""
import json
import os
import socket
import sys
import time

args = sys.argv[1:]
if "port-forward" in args:
    with open(os.environ["FAKE_DIR"] + "/pf.pids", "a") as f:
        f.write(f"{os.getpid()}\n")
    if "svc/broken" in args:
        print('error: services "broken" not found', flush=True)
        sys.exit(1)
    time.sleep(0.3)
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(8)
    print(f"Forwarding from 127.0.0.1:{s.getsockname()[1]} -> 80", flush=True)
    while True:
        conn, _ = s.accept()
        conn.close()
if "fail" in args:
    print("error: the server doesn't have a resource type \"fail\"", file=sys.stderr)
    sys.exit(1)
print(json.dumps(args))

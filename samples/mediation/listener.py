#!/usr/bin/env python3
"""Host control plane for the microagent mediation channel (newline-delimited JSON over TCP).

Each agent connection: wait for {"signal":"ready"}, send requests, read accepting -> result -> completed.
Connections that close without a line (the runtime's readiness probes) are ignored.
Usage: listener.py [--port 9900] [--requests 1] [--once]
"""
import argparse, json, socket, sys

ap = argparse.ArgumentParser()
ap.add_argument("--host", default="127.0.0.1")
ap.add_argument("--port", type=int, default=9900)
ap.add_argument("--requests", type=int, default=1, help="requests per agent connection")
ap.add_argument("--once", action="store_true", help="exit after serving one agent")
args = ap.parse_args()

def serve(conn):
    f = conn.makefile("rwb")
    def send(obj):
        f.write(json.dumps(obj).encode() + b"\n"); f.flush()
    line = f.readline()
    if not line:
        return False  # a probe: connect and close
    msg = json.loads(line)
    print("<-", json.dumps(msg), flush=True)
    assert msg.get("signal") == "ready", msg
    for i in range(1, args.requests + 1):
        req = {"request_id": f"req-{i}", "task": "add", "payload": {"a": i, "b": 2}}
        print("->", json.dumps(req), flush=True)
        send(req)
        while True:  # accepting, result, completed for this request_id
            msg = json.loads(f.readline())
            print("<-", json.dumps(msg), flush=True)
            if msg.get("signal") == "completed" and msg.get("request_id") == req["request_id"]:
                break
    return True

srv = socket.create_server((args.host, args.port), reuse_port=False)
print(f"listening on {args.host}:{args.port}", flush=True)
while True:
    conn, _ = srv.accept()
    with conn:
        served = serve(conn)
    if served and args.once:
        print("done", flush=True)
        sys.exit(0)

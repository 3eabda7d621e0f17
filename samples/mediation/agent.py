#!/usr/bin/env python3
"""A long-lived agent inside a microagent workspace: one process, requests in and results out over the
mediation channel (AF_VSOCK to CID 2 = the host, port 2048; the supervisor relays it to the host listener).

Protocol (newline-delimited JSON): send {"signal":"ready"}; for each request send
{"signal":"accepting"}, the result {"request_id","status","output"}, then {"signal":"completed"}.
With --reconnect, a broken or closed connection is retried and requests are deduplicated by request_id (a
retried request gets the cached result instead of running twice); the task "stop" ends the agent. Without it,
the agent exits when the host closes the channel.
"""
import json, os, socket, sys, time

CID_HOST, PORT = 2, int(os.environ.get("MEDIATION_PORT", "2048"))
RECONNECT = "--reconnect" in sys.argv
AGENT_ID = f"{socket.gethostname()}/{os.getpid()}"
done = {}  # request_id -> result: the deduplication key survives reconnects

def connect():
    # Monotonic: the wall clock jumps when a restored snapshot has its clock set from the host.
    deadline = time.monotonic() + (120 if RECONNECT else 0)
    while True:
        try:
            s = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
            s.connect((CID_HOST, PORT))
            return s
        except OSError:
            s.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)

def work(req):
    p = req.get("payload") or {}
    if req.get("task") == "add":
        return {"sum": p["a"] + p["b"]}
    return {"echo": p}

def session(first):
    s = connect()
    f = s.makefile("rwb")
    def send(obj):
        f.write(json.dumps(obj).encode() + b"\n"); f.flush()
    if not first:
        send({"signal": "mediation_broken", "agent_id": AGENT_ID, "detail": "reconnected"})
    send({"signal": "ready", "agent_id": AGENT_ID})
    for line in f:
        req = json.loads(line)
        rid = req["request_id"]
        send({"signal": "accepting", "request_id": rid})
        if rid not in done:
            done[rid] = {"request_id": rid, "status": "ok", "output": work(req)}
        send(done[rid])
        send({"signal": "completed", "request_id": rid})
        if req.get("task") == "stop":
            s.close()
            return
    s.close()
    if RECONNECT:  # the host went away: any request in flight is retried by the host after we reconnect
        raise OSError("the host closed the channel")

first = True
while True:
    try:
        session(first)
        break
    except (OSError, ValueError) as e:
        if not RECONNECT:
            raise
        print(f"agent: channel broken ({e}); reconnecting", file=sys.stderr, flush=True)
        first = False
        time.sleep(0.5)

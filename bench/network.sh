#!/usr/bin/env bash
# Network benchmark, one run: the same download from a loopback HTTP server (127.0.0.2) through the egress path
# (guest wget → capture → vsock → host broker → TCP) against the floor measured in the same run, the same bytes over a
# --vsock mapping (guest AF_VSOCK client → vsock → host TCP proxy, no policy, no capture); connection setup latency
# (median, p95) both ways; and the boot-time cost of the user network against isolated.
# Traffic stays on this host: the broker runs with MICROAGENT_EGRESS_LOOPBACK_ONLY=1.
set -euo pipefail
cd "$(dirname "$0")/.."
MA=./bin/microagent
N=${BENCH_RUNS:-5}
CONNS=${BENCH_CONNS:-40}
MIB=${BENCH_MIB:-32}
export MICROAGENT_STATE_DIR=${MICROAGENT_STATE_DIR:-$HOME/.microagent}
export MICROAGENT_EGRESS_LOOPBACK_ONLY=1
py_image=build/images/python
[ -d "$py_image" ] || bash scripts/build-python-image.sh "$py_image" >/dev/null

work=$(mktemp -d)
ws=bench-net-$$
cleanup() { $MA delete "$ws" --force >/dev/null 2>&1 || true; [ -n "${srv:-}" ] && kill "$srv" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
head -c $((MIB << 20)) /dev/urandom > "$work/blob"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.2",0)); print(s.getsockname()[1])')
(cd "$work" && exec python3 -m http.server "$port" --bind 127.0.0.2 >/dev/null 2>&1) & srv=$!
for _ in $(seq 50); do python3 -c "import socket; socket.create_connection(('127.0.0.2',$port),1)" 2>/dev/null && break; sleep 0.1; done

$MA create "$ws" --image "oci:$py_image" --memory 512 --add-host bench.test:127.0.0.2 --egress-allow bench.test \
  --vsock "5000=127.0.0.2:$port" >/dev/null
$MA start "$ws" >/dev/null
cat > "$work/bench.py" <<PY
import socket, sys, time
mode, n = sys.argv[1], int(sys.argv[2])
# egress-ip: the name is resolved once (the broker answers a guest-routable stand-in for 127.0.0.2), so latency is the connect alone.
addr = socket.gethostbyname("bench.test") if mode == "egress-ip" else "bench.test"
def conn():
    if mode == "vsock":
        s = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM); s.connect((2, 5000)); return s
    return socket.create_connection((addr, $port))
def get(path):
    s = conn(); s.sendall(b"GET " + path + b" HTTP/1.0\r\nHost: bench.test\r\n\r\n"); total = 0
    while True:
        b = s.recv(262144)
        if not b: break
        total += len(b)
    s.close(); return total
if sys.argv[3] == "download":
    t = time.perf_counter(); got = get(b"/blob"); dt = time.perf_counter() - t
    print(f"{got / dt / 1048576:.1f}")
else:
    lat = []
    for _ in range(n):
        t = time.perf_counter(); s = conn(); s.sendall(b"HEAD / HTTP/1.0\r\n\r\n"); s.recv(1); lat.append((time.perf_counter() - t) * 1000); s.close()
    lat.sort(); print(f"{lat[len(lat)//2]:.2f} {lat[min(len(lat)-1, int(len(lat)*0.95))]:.2f}")
PY
$MA cp "$work/bench.py" "$ws:/tmp/bench.py" >/dev/null
guest() { $MA exec "$ws" -- python3 /tmp/bench.py "$@"; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

guest egress 1 download >/dev/null; guest vsock 1 download >/dev/null   # warm-up
eg=(); vs=()
for _ in $(seq "$N"); do eg+=("$(guest egress 1 download)"); vs+=("$(guest vsock 1 download)"); done
eg_med=$(printf '%s\n' "${eg[@]}" | median); vs_med=$(printf '%s\n' "${vs[@]}" | median)
read -r eg_lat eg_p95 <<<"$(guest egress-ip "$CONNS" latency)"
read -r vs_lat vs_p95 <<<"$(guest vsock "$CONNS" latency)"
$MA delete "$ws" --force >/dev/null

ms() { local s e; s=$(date +%s%N); "$@" >/dev/null 2>&1 </dev/null; e=$(date +%s%N); echo $(( (e - s) / 1000000 )); }
user_t=(); iso_t=()
for _ in $(seq "$N"); do user_t+=("$(ms $MA run --network user -- true)"); iso_t+=("$(ms $MA run --network isolated -- true)"); done
user_med=$(printf '%s\n' "${user_t[@]}" | median); iso_med=$(printf '%s\n' "${iso_t[@]}" | median)

echo "network benchmark ($N runs, ${MIB} MiB download, $CONNS connections, $(nproc) cores)"
echo "  download via egress      : median ${eg_med} MiB/s  (${eg[*]})"
echo "  download via --vsock     : median ${vs_med} MiB/s  (${vs[*]})  [floor]"
echo "  throughput ratio         : $(awk -v a="$eg_med" -v b="$vs_med" 'BEGIN { printf "%.2f", a / b }')  (egress / vsock)"
echo "  connect latency egress   : median ${eg_lat} ms, p95 ${eg_p95} ms"
echo "  connect latency --vsock  : median ${vs_lat} ms, p95 ${vs_p95} ms  [floor]"
echo "  latency ratio            : $(awk -v a="$eg_lat" -v b="$vs_lat" 'BEGIN { printf "%.2f", a / b }')  (egress / vsock, median)"
echo "  run -- true, user        : median ${user_med} ms  (${user_t[*]})"
echo "  run -- true, isolated    : median ${iso_med} ms  (${iso_t[*]})  [floor]"
echo "  boot ratio               : $(awk -v a="$user_med" -v b="$iso_med" 'BEGIN { printf "%.2f", a / b }')  (user / isolated)"

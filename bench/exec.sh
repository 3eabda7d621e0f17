#!/usr/bin/env bash
# Exec latency: `exec -- true` through the library and through the CLI against a raw round trip on the vsock backend
# (same workspace, same run), the ratio CLI / library of the medians (goal <= 1.5: what the CLI adds is process start),
# and create + start to first exec from a cached baseline. Run from the repo root after `make build`.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-50}
own_state=""
if [ -z "${MICROAGENT_STATE_DIR:-}" ]; then own_state=/tmp/ma-bench-$$; fi
export MICROAGENT_STATE_DIR=${MICROAGENT_STATE_DIR:-$own_state}
export MICROAGENT_BIN=$PWD/bin/microagent
M=./bin/microagent
ms() { date +%s%N; }
cleanup() {
  $M delete bench-exec --force >/dev/null 2>&1 || true; $M delete bench-cold --force >/dev/null 2>&1 || true
  if [ -n "$own_state" ]; then rm -rf "$own_state"; fi
}
trap cleanup EXIT

$M run -- true >/dev/null   # kernel, initramfs, baseline, accelerator probe: cached from here on
$M create bench-exec >/dev/null && $M start bench-exec >/dev/null

dotnet build bench/ExecBench -c Release -v quiet -nologo >/dev/null
lib_out=$(dotnet bench/ExecBench/bin/Release/net10.0/ExecBench.dll bench-exec "$N")
echo "$lib_out"
lib_median=$(echo "$lib_out" | awk '/^library ExecAsync/ { for (i = 1; i < NF; i++) if ($i == "median") print $(i + 1) }')

samples=()
for _ in $(seq 1 5); do $M exec bench-exec -- true; done
for _ in $(seq 1 "$N"); do t0=$(ms); $M exec bench-exec -- true; t1=$(ms); samples+=($(( (t1 - t0) / 1000 ))); done
sorted=$(printf '%s\n' "${samples[@]}" | sort -n)
echo "$sorted" | awk -v n="$N" '{ a[NR]=$1 } END { m=a[int((NR+1)/2)]; p=a[int(NR*0.95+0.999)]; printf "%-28s median %8.2f ms   p95 %8.2f ms   (n=%d)\n", "CLI exec -- true", m/1000, p/1000, n }'
cli_median=$(echo "$sorted" | awk '{ a[NR]=$1 } END { printf "%.2f", a[int((NR+1)/2)]/1000 }')
awk -v c="$cli_median" -v l="$lib_median" 'BEGIN { printf "ratio CLI / library          %.2f  (goal <= 1.5)\n", c / l }'

t0=$(ms)
$M create bench-cold >/dev/null
t1=$(ms)
$M start bench-cold >/dev/null
t2=$(ms)
$M exec bench-cold -- true
t3=$(ms)
printf 'create %d ms + start %d ms + first exec %d ms = %d ms (cached baseline, %s)\n' \
  $(( (t1-t0)/1000000 )) $(( (t2-t1)/1000000 )) $(( (t3-t2)/1000000 )) $(( (t3-t0)/1000000 )) \
  "$($M status bench-cold --json | grep -o '"accelerator": "[a-z]*"' | cut -d'"' -f4)"

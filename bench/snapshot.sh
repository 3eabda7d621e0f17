#!/usr/bin/env bash
# Snapshot benchmark (docs/ARCHITECTURE.md "Snapshots"), one run, floors measured in the same run:
#   restore in place to first exec  vs  cold start to first exec (goal <= 0.15)
#   fork (create + first start) to first exec  vs  cold start to first exec
#   snapshot create time; pause and resume round trips (goal <= 50 ms each, CLI included);
#   snapshot bytes on disk (allocated, the memory file is sparse) per MiB of guest RAM;
#   warm `run -- true` (restoring the warm-start template) vs the bare QEMU boot floor of bench/boot.sh (goal <= 0.25), one run.
# Medians of BENCH_RUNS (default 5). Uses its own state directory unless MICROAGENT_STATE_DIR is set.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${BENCH_RUNS:-5}
MA=./bin/microagent
state=${MICROAGENT_STATE_DIR:-$(mktemp -d /tmp/ma-bench-snap.XXXXXX)}
export MICROAGENT_STATE_DIR=$state
ws=bench-snap
cleanup() { for i in $(seq "$N"); do $MA delete "$ws-f$i" --force >/dev/null 2>&1 || true; done; $MA delete "$ws" --force >/dev/null 2>&1 || true; }
trap 'cleanup; rm -rf "${bare_work:-}"' EXIT

ms() { local s e; s=$(date +%s%N); "$@" >/dev/null; e=$(date +%s%N); echo $(( (e - s) / 1000000 )); }
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : int((a[NR/2] + a[NR/2+1]) / 2)}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }

cleanup
$MA run -- true >/dev/null # warms the state dir up and makes the template of run's default shape
# shellcheck source=bench/bare-boot.sh
. bench/bare-boot.sh
$MA create "$ws" >/dev/null
cold=(); create=(); restore=(); fork=(); pause=(); resume=()
for i in $(seq "$N"); do
  cold+=("$(ms bash -c "$MA start $ws && $MA exec $ws -- true")")
  pause+=("$(ms $MA pause $ws)")
  resume+=("$(ms $MA resume $ws)")
  create+=("$(ms $MA snapshot create $ws --tag t)")
  $MA halt "$ws" >/dev/null
  restore+=("$(ms bash -c "$MA start $ws --from-snapshot t && $MA exec $ws -- true")")
  $MA halt "$ws" >/dev/null
done
for i in $(seq "$N"); do
  fork+=("$(ms bash -c "$MA create $ws-f$i --from-snapshot $ws:t && $MA start $ws-f$i && $MA exec $ws-f$i -- true")")
  $MA delete "$ws-f$i" --force >/dev/null
done
floor=$(ms bare)
warm=$(ms $MA run -- true)
warm_from=$($MA run --json -- true | python3 -c 'import json,sys; print(json.load(sys.stdin).get("warmFrom") or "none: cold")')
dir=$state/workspaces/$ws/snapshots/t
mem_mib=$($MA snapshot list "$ws" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["memoryMiB"])')
alloc=$(du -B1 -s "$dir" | cut -f1)
layers=$(du -B1 -s "$state/workspaces/$ws/layers" | cut -f1)

med() { printf '%s\n' "$@" | median; }
c=$(med "${cold[@]}"); r=$(med "${restore[@]}"); f=$(med "${fork[@]}")
echo "cold start to first exec:            ${c} ms (median of $N; floor)"
echo "restore in place to first exec:      ${r} ms  ratio $(ratio "$r" "$c") (goal <= 0.15)"
echo "fork (create+start) to first exec:   ${f} ms  ratio $(ratio "$f" "$c")"
echo "snapshot create:                     $(med "${create[@]}") ms  ratio $(ratio "$(med "${create[@]}")" "$c") of a cold start"
echo "pause / resume (CLI round trip):     $(med "${pause[@]}") / $(med "${resume[@]}") ms (goal <= 50 each)"
echo "snapshot bytes on disk per MiB RAM:  $(awk -v a="$alloc" -v m="$mem_mib" 'BEGIN { printf "%.0f KiB", a / m / 1024 }') (memory file $(du -h -s "$dir" | cut -f1) allocated for $mem_mib MiB; all layers $(( layers / 1024 )) KiB)"
echo "warm run -- true:                    ${warm} ms  ratio $(ratio "$warm" "$floor") of the bare QEMU boot floor ${floor} ms (goal <= 0.25; one run; template $warm_from)"

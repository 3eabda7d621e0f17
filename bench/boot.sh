#!/usr/bin/env bash
# Boot benchmark: wall time of a cold `microagent run --cold -- true` (no warm-start template: bench/snapshot.sh measures
# the warm one) against a bare QEMU boot of the same kernel
# (an initramfs whose /init powers off at once) with the same accelerator and machine, in the same run.
# Prints medians and their ratio (goal for TCG: ratio <= 1.5).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${BENCH_RUNS:-7}
MA=./bin/microagent
state=${MICROAGENT_STATE_DIR:-$HOME/.microagent}
export MICROAGENT_STATE_DIR=$state

# Warm up: installs the kernel, builds the initramfs and the baseline once, probes the accelerator.
$MA run -- true >/dev/null
# shellcheck source=bench/bare-boot.sh
. bench/bare-boot.sh
accel=$bare_accel
trap 'rm -rf "$bare_work"' EXIT
ms() { local s e; s=$(date +%s%N); "$@" >/dev/null 2>&1 </dev/null || true; e=$(date +%s%N); echo $(( (e - s) / 1000000 )); }
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : int((a[NR/2] + a[NR/2+1]) / 2)}'; }

bare_times=(); run_times=()
for i in $(seq "$N"); do
  bare_times+=("$(ms bare)")
  run_times+=("$(ms $MA run --cold -- true)")
done
bare_med=$(printf '%s\n' "${bare_times[@]}" | median)
run_med=$(printf '%s\n' "${run_times[@]}" | median)
ratio=$(awk -v a="$run_med" -v b="$bare_med" 'BEGIN { printf "%.2f", a / b }')
echo "boot benchmark ($accel, $N runs each, $(nproc) cores)"
echo "  bare QEMU boot+poweroff : median ${bare_med} ms  (${bare_times[*]})"
echo "  microagent run --cold   : median ${run_med} ms  (${run_times[*]})"
echo "  ratio                   : ${ratio}  (goal <= 1.5)"

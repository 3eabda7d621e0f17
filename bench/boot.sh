#!/usr/bin/env bash
# Boot benchmark: wall time of `microagent run -- true` against a bare QEMU boot of the same kernel
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
accel=$($MA doctor --json | python3 -c 'import json,sys; print((json.load(sys.stdin)["accelerator"] or {}).get("name","tcg"))')
kernel=$($MA kernel list --json | python3 -c 'import json,sys; ks=json.load(sys.stdin); print(next(k for k in ks if k["isDefault"])["kernelPath"])')

work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
mkdir -p "$work/root/bin"
cp /bin/busybox "$work/root/bin/busybox"
printf '#!/bin/busybox sh\n/bin/busybox poweroff -f\n' > "$work/root/init"; chmod +x "$work/root/init"
(cd "$work/root" && find . | cpio -o -H newc --quiet > "$work/bare.cpio")

if [ "$accel" = kvm ]; then machine=(-accel kvm -cpu host -M microvm,isa-serial=on,memory-backend=mem); else
  machine=(-accel tcg -cpu max -M pc,memory-backend=mem -bios /usr/share/qemu/qboot.rom); fi
bare() {
  qemu-system-x86_64 -nodefaults -no-user-config -nographic -no-reboot "${machine[@]}" -m 256M -smp 1 \
    -object memory-backend-memfd,id=mem,size=256M,share=on -kernel "$kernel" -initrd "$work/bare.cpio" \
    -append "console=ttyS0 quiet loglevel=3 panic=-1 reboot=t" -serial null >/dev/null 2>&1 </dev/null
}
ms() { local s e; s=$(date +%s%N); "$@" >/dev/null 2>&1 </dev/null || true; e=$(date +%s%N); echo $(( (e - s) / 1000000 )); }
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : int((a[NR/2] + a[NR/2+1]) / 2)}'; }

bare_times=(); run_times=()
for i in $(seq "$N"); do
  bare_times+=("$(ms bare)")
  run_times+=("$(ms $MA run -- true)")
done
bare_med=$(printf '%s\n' "${bare_times[@]}" | median)
run_med=$(printf '%s\n' "${run_times[@]}" | median)
ratio=$(awk -v a="$run_med" -v b="$bare_med" 'BEGIN { printf "%.2f", a / b }')
echo "boot benchmark ($accel, $N runs each, $(nproc) cores)"
echo "  bare QEMU boot+poweroff : median ${bare_med} ms  (${bare_times[*]})"
echo "  microagent run -- true  : median ${run_med} ms  (${run_times[*]})"
echo "  ratio                   : ${ratio}  (goal <= 1.5)"

#!/usr/bin/env bash
# Image benchmark (issue 3): the same ~100 MB image (Debian minbase + python3, scripts/build-python-image.sh)
# served by a local docker-registry on 127.0.0.1.
#   A: `microagent image pull` cold (empty state dir) until the baseline is ready
#   B: the pipeline skopeo copy (registry -> OCI layout) + umoci unpack + mke2fs -d (same size), in the same run
#   C: creating a workspace disk (qcow2 overlay) from the cached baseline
# Goal: A/B <= 1.0 and C < 100 ms. Usage: bench/image.sh [RUNS] (default 3; medians). Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
layout=build/images/python
bash scripts/build-python-image.sh "$layout"
work=$(mktemp -d /tmp/ma-bench-image.XXXXXX)
reg_pid=""
cleanup() { if [ -n "$reg_pid" ]; then kill "$reg_pid" 2>/dev/null || true; wait "$reg_pid" 2>/dev/null || true; fi; rm -rf "$work"; }
trap cleanup EXIT
port=$(shuf -i 20000-60000 -n 1)
printf 'version: 0.1\nlog: {level: error}\nstorage: {filesystem: {rootdirectory: %s/registry}}\nhttp: {addr: 127.0.0.1:%s}\n' "$work" "$port" > "$work/registry.yml"
/usr/bin/docker-registry serve "$work/registry.yml" >/dev/null 2>&1 & reg_pid=$!
for _ in $(seq 50); do (echo > "/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
image=127.0.0.1:$port/bench/python:3.11
skopeo copy -q --dest-tls-verify=false "oci:$layout:3.11" "docker://$image"
now() { date +%s.%N; }
calc() { awk "BEGIN{print $1}"; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
a_times=(); b_times=(); c_times=()
for i in $(seq "$runs"); do
  sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
  st="$work/state-$i"
  t0=$(now); MICROAGENT_STATE_DIR=$st MICROAGENT_QUIET=1 ./bin/microagent image pull --json "$image" > "$work/pull.json"; t1=$(now)
  a_times+=("$(calc "$t1 - $t0")")
  size_mib=$(( $(grep -o '"baselineBytes": [0-9]*' "$work/pull.json" | grep -o '[0-9]*$') >> 20 ))
  baseline=$(grep -o '"baseline": "[^"]*"' "$work/pull.json" | cut -d'"' -f4)

  sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
  p="$work/pipe-$i"; mkdir -p "$p"
  t0=$(now)
  skopeo copy -q --src-tls-verify=false "docker://$image" "oci:$p/layout:x"
  umoci unpack --image "$p/layout:x" "$p/bundle" >/dev/null
  mke2fs -q -t ext4 -b 4096 -m 0 -d "$p/bundle/rootfs" -E root_owner=0:0 -F "$p/disk.ext4" "${size_mib}M" >/dev/null
  t1=$(now)
  b_times+=("$(calc "$t1 - $t0")")
  rm -rf "$p"

  t0=$(now); qemu-img create -q -f qcow2 -F raw -b "$baseline" "$work/ws-$i.qcow2"; t1=$(now)
  c_times+=("$(calc "($t1 - $t0) * 1000")")
  rm -rf "$st" "$work/ws-$i.qcow2"
done
A=$(printf '%s\n' "${a_times[@]}" | median); B=$(printf '%s\n' "${b_times[@]}" | median); C=$(printf '%s\n' "${c_times[@]}" | median)
echo "image: $(du -sh "$layout" | cut -f1) compressed, baseline ${size_mib} MiB; $runs runs (median)"
printf 'A microagent image pull (cold -> baseline): %.2f s   [%s]\n' "$A" "${a_times[*]}"
printf 'B skopeo copy + umoci unpack + mke2fs -d:   %.2f s   [%s]\n' "$B" "${b_times[*]}"
printf 'ratio A/B: %.2f (goal <= 1.0)\n' "$(calc "$A / $B")"
printf 'C workspace disk from cached baseline:      %.1f ms (goal < 100 ms)\n' "$C"

#!/usr/bin/env bash
# Footprint of the NativeAOT host binary: `microagent --version` wall time (against `/bin/true` in the same run), the
# RSS of an idle workspace's supervisor, and the host memory each idle workspace costs beyond its guest RAM
# (supervisor + QEMU, minus the guest's pages), for 1 and for WORKSPACES (default 10) idle workspaces at once.
# "Beyond guest RAM" counts resident anonymous and file pages, not the shared guest memory (RssShmem: the memfd that
# backs guest RAM, mapped by QEMU and by the supervisor's vsock backend); PSS splits the binary's shared pages.
# Goals: --version <= 15 ms, supervisor RSS <= 25 MiB, per workspace beyond guest RAM <= 40 MiB.
# Run from the repo root after `make build`. Guest RAM is kept small (MEMORY, default 128 MiB) so 10 fit on a small host.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-30}
COUNT=${WORKSPACES:-10}
MEMORY=${MEMORY:-128}
own_state=""
if [ -z "${MICROAGENT_STATE_DIR:-}" ]; then own_state=/tmp/ma-footprint-$$; fi
export MICROAGENT_STATE_DIR=${MICROAGENT_STATE_DIR:-$own_state}
M=./bin/microagent
names=()
cleanup() {
  for n in "${names[@]}"; do $M delete "$n" --force >/dev/null 2>&1 || true; done
  if [ -n "$own_state" ]; then rm -rf "$own_state"; fi
}
trap cleanup EXIT

median_ms() { # command...: median wall time of N runs, in ms with two decimals
  local samples=() t0 t1
  for _ in $(seq 1 "$N"); do t0=$(date +%s%N); "$@" >/dev/null; t1=$(date +%s%N); samples+=($(( (t1 - t0) / 1000 ))); done
  printf '%s\n' "${samples[@]}" | sort -n | awk '{ a[NR]=$1 } END { printf "%.2f", a[int((NR+1)/2)] / 1000 }'
}
kib() { awk -v k="$2" '$1 == k":" { print $2 }' "/proc/$1/$3"; } # pid field file

floor=$(median_ms /bin/true)
version=$(median_ms $M --version)
printf '%-44s median %7.2f ms  (/bin/true %.2f ms; goal <= 15 ms)\n' "microagent --version" "$version" "$floor"

$M run -- true >/dev/null # kernel, initramfs, baseline and accelerator probe cached from here on

# One line per workspace: supervisor RSS, then the sum of (RSS - shared guest memory) and of PSS without shmem, in KiB.
measure() {
  local name=$1 sup qemu
  sup=$($M status "$name" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["pids"]["supervisor"])')
  qemu=$($M status "$name" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["pids"]["qemu"])')
  local srss sshm qrss qshm spss qpss
  srss=$(kib "$sup" VmRSS status); sshm=$(kib "$sup" RssShmem status)
  qrss=$(kib "$qemu" VmRSS status); qshm=$(kib "$qemu" RssShmem status)
  spss=$(( $(kib "$sup" Pss_Anon smaps_rollup) + $(kib "$sup" Pss_File smaps_rollup) ))
  qpss=$(( $(kib "$qemu" Pss_Anon smaps_rollup) + $(kib "$qemu" Pss_File smaps_rollup) ))
  echo "$srss $(( srss - sshm + qrss - qshm )) $(( spss + qpss ))"
}

for i in $(seq 1 "$COUNT"); do
  names+=("fp-$i")
  $M create "fp-$i" --memory "$MEMORY" --cpus 1 >/dev/null
  $M start "fp-$i" >/dev/null
  for _ in 1 2 3; do $M exec "fp-$i" -- true; done # the first execs are done: it is idle from here
  if [ "$i" = 1 ]; then
    read -r srss beyond pss < <(measure fp-1)
    printf '%-44s %7.1f MiB  (goal <= 25 MiB)\n' "idle supervisor RSS" "$(awk -v k="$srss" 'BEGIN { print k / 1024 }')"
    printf '%-44s %7.1f MiB RSS, %.1f MiB PSS  (goal <= 40 MiB)\n' "host memory beyond guest RAM, 1 workspace" \
      "$(awk -v k="$beyond" 'BEGIN { print k / 1024 }')" "$(awk -v k="$pss" 'BEGIN { print k / 1024 }')"
  fi
done
if [ "$COUNT" -gt 1 ]; then
  total_rss=0; total_pss=0; max_sup=0
  for n in "${names[@]}"; do
    read -r srss beyond pss < <(measure "$n")
    total_rss=$(( total_rss + beyond )); total_pss=$(( total_pss + pss )); [ "$srss" -gt "$max_sup" ] && max_sup=$srss
  done
  printf '%-44s %7.1f MiB RSS, %.1f MiB PSS  (largest supervisor %.1f MiB)\n' "host memory beyond guest RAM, per workspace of $COUNT" \
    "$(awk -v k="$total_rss" -v c="$COUNT" 'BEGIN { print k / c / 1024 }')" "$(awk -v k="$total_pss" -v c="$COUNT" 'BEGIN { print k / c / 1024 }')" \
    "$(awk -v k="$max_sup" 'BEGIN { print k / 1024 }')"
fi

#!/usr/bin/env bash
# Footprint of the NativeAOT host binary: `microagent --version` wall time (against `/bin/true` in the same run), the
# RSS of an idle workspace's supervisor, and the host memory each idle workspace costs beyond its guest RAM
# (supervisor + QEMU, minus the guest's pages), for 1 and for WORKSPACES (default 10) idle workspaces at once.
# "Beyond guest RAM" counts resident anonymous and file pages, not the shared guest memory (RssShmem: the memfd that
# backs guest RAM, mapped by QEMU and by the supervisor's vsock backend); PSS splits the binary's shared pages.
# Three figures per workspace, from /proc/PID/smaps_rollup of the supervisor and QEMU: RSS minus guest pages (what `ps`
# shows, every shared file page counted in full), PSS minus guest pages (shared file pages split between the processes
# that map them: the figure the goal is judged on) and private (anonymous pages only: what one more workspace adds when
# the binaries are already in the page cache). The guest pages touched and QEMU's TCG translation buffer (its one rwx
# mapping, capped by -accel tcg,tb-size) are shown beside them.
# Goals: --version <= 15 ms, supervisor RSS <= 25 MiB, per workspace beyond guest RAM <= 40 MiB (PSS).
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

# One line per workspace, in KiB: supervisor RSS; supervisor + QEMU RSS minus guest memory; PSS minus guest memory;
# private anonymous; guest pages touched (QEMU's RssShmem); QEMU's TCG translation buffer (0 under KVM).
measure() {
  local name=$1 sup qemu
  sup=$($M status "$name" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["pids"]["supervisor"])')
  qemu=$($M status "$name" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["pids"]["qemu"])')
  local srss sshm qrss qshm spss qpss anon tb
  srss=$(kib "$sup" VmRSS status); sshm=$(kib "$sup" RssShmem status)
  qrss=$(kib "$qemu" VmRSS status); qshm=$(kib "$qemu" RssShmem status)
  spss=$(( $(kib "$sup" Pss_Anon smaps_rollup) + $(kib "$sup" Pss_File smaps_rollup) ))
  qpss=$(( $(kib "$qemu" Pss_Anon smaps_rollup) + $(kib "$qemu" Pss_File smaps_rollup) ))
  anon=$(( $(kib "$sup" Anonymous smaps_rollup) + $(kib "$qemu" Anonymous smaps_rollup) ))
  tb=$(awk '/^[0-9a-f]+-[0-9a-f]+ rwxp /{f=1; next} /^[0-9a-f]+-[0-9a-f]+ /{f=0} f && $1 == "Rss:" {t += $2} END {print t + 0}' "/proc/$qemu/smaps")
  echo "$srss $(( srss - sshm + qrss - qshm )) $(( spss + qpss )) $anon $qshm $tb"
}
mib() { awk -v k="$1" -v c="${2:-1}" 'BEGIN { printf "%.1f", k / c / 1024 }'; }

for i in $(seq 1 "$COUNT"); do
  names+=("fp-$i")
  $M create "fp-$i" --memory "$MEMORY" --cpus 1 >/dev/null
  $M start "fp-$i" >/dev/null
  for _ in 1 2 3; do $M exec "fp-$i" -- true; done # the first execs are done: it is idle from here
  if [ "$i" = 1 ]; then
    read -r srss beyond pss anon guest tb < <(measure fp-1)
    printf '%-44s %7.1f MiB  (goal <= 25 MiB)\n' "idle supervisor RSS" "$(mib "$srss")"
    printf '%-44s %7s MiB PSS, %s MiB RSS, %s MiB private  (goal <= 40 MiB PSS; guest pages %s MiB, TCG buffer %s MiB)\n' \
      "host memory beyond guest RAM, 1 workspace" "$(mib "$pss")" "$(mib "$beyond")" "$(mib "$anon")" "$(mib "$guest")" "$(mib "$tb")"
  fi
done
if [ "$COUNT" -gt 1 ]; then
  t_rss=0; t_pss=0; t_anon=0; t_guest=0; t_tb=0; max_sup=0
  for n in "${names[@]}"; do
    read -r srss beyond pss anon guest tb < <(measure "$n")
    t_rss=$(( t_rss + beyond )); t_pss=$(( t_pss + pss )); t_anon=$(( t_anon + anon )); t_guest=$(( t_guest + guest )); t_tb=$(( t_tb + tb ))
    [ "$srss" -gt "$max_sup" ] && max_sup=$srss
  done
  printf '%-44s %7s MiB PSS, %s MiB RSS, %s MiB private  (guest pages %s MiB, TCG buffer %s MiB; largest supervisor %s MiB RSS)\n' \
    "host memory beyond guest RAM, per workspace of $COUNT" "$(mib "$t_pss" "$COUNT")" "$(mib "$t_rss" "$COUNT")" "$(mib "$t_anon" "$COUNT")" \
    "$(mib "$t_guest" "$COUNT")" "$(mib "$t_tb" "$COUNT")" "$(mib "$max_sup")"
fi

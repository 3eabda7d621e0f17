#!/usr/bin/env bash
# Model runner benchmark, one run (docs/ARCHITECTURE.md "Model runner"): from `microagent start` of a workspace created with
# --model (its llama.cpp runner not running: each round pays the runner's start) to the first streamed completion token
# read in the guest through OPENAI_BASE_URL; split into the start (pairing + boot) and the first token after it; median of N.
# The model is the tests' tiny random-weight llama GGUF (tests/Shared/TinyGguf.cs, written by bench/ExecBench), served by
# llama-server from $MICROAGENT_LLAMA_SERVER or scripts/llama-server.sh's cache. Traffic stays on this host.
set -euo pipefail
cd "$(dirname "$0")/.."
MA=./bin/microagent
N=${BENCH_RUNS:-3}
export MICROAGENT_STATE_DIR=${MICROAGENT_STATE_DIR:-$HOME/.microagent}
export MICROAGENT_EGRESS_LOOPBACK_ONLY=1
server=${MICROAGENT_LLAMA_SERVER:-$(bash scripts/llama-server.sh --print 2>/dev/null || true)}
[ -x "$server" ] || { echo "bench/model.sh: llama-server is not built (scripts/llama-server.sh)" >&2; exit 1; }

work=$(mktemp -d)
ws=bench-model-$$
cleanup() { $MA delete "$ws" --force >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
dotnet build bench/ExecBench -c Release -v quiet -nologo >/dev/null
dotnet bench/ExecBench/bin/Release/net10.0/ExecBench.dll --write-gguf "$work/tiny.gguf"

$MA create "$ws" --model "$work/tiny.gguf" --model-gpu off --model-runner-command "$server" \
  --model-runner-arg --threads --model-runner-arg 1 --model-runner-arg --ctx-size --model-runner-arg 512 >/dev/null
body='{"model":"tiny","messages":[{"role":"user","content":"hello"}],"max_tokens":8,"stream":true}'
first_token() {
  $MA exec "$ws" -e "BODY=$body" -- sh -c \
    'wget -qO- --header "Content-Type: application/json" --post-data "$BODY" "$OPENAI_BASE_URL/chat/completions" | grep -m1 -q "data: "'
}
ms() { date +%s%3N; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

: > "$work/start"; : > "$work/token"; : > "$work/total"
for _ in $(seq "$N"); do
  t0=$(ms); $MA start "$ws" >/dev/null; t1=$(ms); first_token; t2=$(ms)
  echo $((t1 - t0)) >> "$work/start"; echo $((t2 - t1)) >> "$work/token"; echo $((t2 - t0)) >> "$work/total"
  $MA halt "$ws" >/dev/null
done
echo "model: start to first completion token in the guest (median of $N, ms): total $(median < "$work/total")," \
  "start (runner + boot) $(median < "$work/start"), first token after start $(median < "$work/token")"

# --- Mediator latency (the mediator's work adds here): the same request through --model-mediation local-allow against
# --model-mediation off, per request, in this run. BENCH_MEDIATION=0 skips it.

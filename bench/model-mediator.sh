#!/usr/bin/env bash
# Model mediator latency: the same chat completion POST straight to an OpenAI-compatible upstream and through the model
# mediator (local-allow, and a policy file), one run, in-process on loopback (no VM: this isolates what the mediator adds per
# request: parsing, the decision, the audit line and its own runner connection). Prints medians, p95, the added latency and
# the ratio. bench/model.sh (start to first token in a guest) can call it for the mediator half. Run from the repo root.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-500}
dotnet build bench/MediatorBench -c Release -v quiet -nologo >/dev/null
dotnet bench/MediatorBench/bin/Release/net10.0/MediatorBench.dll "$N"

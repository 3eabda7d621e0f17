#!/usr/bin/env bash
# Updates the public API baseline of the assemblies in the Microagent package (docs/ARCHITECTURE.md "Package"):
# PublicAPI.Shipped.txt / PublicAPI.Unshipped.txt beside src/Microagent, src/Microagent.Interop, src/Microagent.Protocol.
# The build fails on a public member missing from them (RS0016) or an entry whose member is gone or changed (RS0017).
# This script builds those projects, adds each RS0016 symbol to PublicAPI.Unshipped.txt and drops each RS0017 entry
# (the analyzer's messages carry the entries in the files' own format), until the build passes.
#
#   scripts/public-api.sh          declare new public members in Unshipped, drop removed/changed ones
#   scripts/public-api.sh --ship   then move the Unshipped entries into Shipped (when a version is released)
#
# Review `git diff -- 'src/*/PublicAPI.*.txt'` afterwards: every line there is a public API change.
set -euo pipefail
cd "$(dirname -- "$0")/.."
ship=0
case ${1:-} in --ship) ship=1 ;; "") ;; *) echo "usage: $0 [--ship]" >&2; exit 2 ;; esac
log=$(mktemp)
trap 'rm -f -- "$log"' EXIT
for round in 1 2 3; do
  if dotnet build src/Microagent -c Release -nologo -v quiet -clp:NoSummary >"$log" 2>&1; then break; fi
  python3 - "$log" <<'PY'
import re, sys, os
added = removed = 0
for line in open(sys.argv[1], encoding='utf-8'):
    m = re.match(r"^(/.*?)\(\d+,\d+\): error (RS0016|RS0017): Symbol '(.*)' (is not part of the declared public API|is part of the declared API)", line)
    if not m: continue
    path, code, symbol = m.group(1), m.group(2), m.group(3)
    d = os.path.dirname(path)
    while not os.path.exists(os.path.join(d, 'PublicAPI.Shipped.txt')): d = os.path.dirname(d)
    if code == 'RS0016':
        f = os.path.join(d, 'PublicAPI.Unshipped.txt')
        lines = open(f, encoding='utf-8').read().splitlines()
        if symbol not in lines:
            lines.append(symbol); added += 1
            open(f, 'w', encoding='utf-8').write('\n'.join(lines) + '\n')
    else:
        for name in ('PublicAPI.Shipped.txt', 'PublicAPI.Unshipped.txt'):
            f = os.path.join(d, name)
            lines = open(f, encoding='utf-8').read().splitlines()
            kept = [l for l in lines if l != symbol]
            if len(kept) != len(lines):
                removed += 1
                open(f, 'w', encoding='utf-8').write('\n'.join(kept) + '\n')
print(f"public-api: {added} declared, {removed} dropped")
if added == removed == 0:
    sys.exit(1)
PY
  [ $? -eq 0 ] || { cat "$log" >&2; echo "public-api: the build fails for another reason (above)" >&2; exit 1; }
done
dotnet build src/Microagent -c Release -nologo -v quiet -clp:NoSummary >"$log" 2>&1 || { cat "$log" >&2; exit 1; }
for p in src/Microagent src/Microagent.Interop src/Microagent.Protocol; do
  if [ $ship = 1 ]; then
    { echo '#nullable enable'; grep -hv '^#nullable' "$p/PublicAPI.Shipped.txt" "$p/PublicAPI.Unshipped.txt" | grep -v '^$' || true; } | { read -r first; echo "$first"; LC_ALL=C sort -u; } > "$p/PublicAPI.Shipped.txt.new"
    mv -- "$p/PublicAPI.Shipped.txt.new" "$p/PublicAPI.Shipped.txt"
    printf '#nullable enable\n' > "$p/PublicAPI.Unshipped.txt"
  else
    { echo '#nullable enable'; grep -v '^#nullable' "$p/PublicAPI.Unshipped.txt" | grep -v '^$' | LC_ALL=C sort -u || true; } > "$p/PublicAPI.Unshipped.txt.new"
    mv -- "$p/PublicAPI.Unshipped.txt.new" "$p/PublicAPI.Unshipped.txt"
  fi
done
echo "public-api: the baseline matches the code"
git --no-pager diff --stat -- 'src/*/PublicAPI.*.txt' || true

#!/usr/bin/env bash
# Builds llama.cpp's `llama-server` (CPU only) from the llama.cpp git bundle that the npm package
# node-llama-cpp@3.21.1 carries, into a cache keyed by the bundle's sha256, so only the first run on a machine
# pays for the build (docs/ARCHITECTURE.md "Model runner"). Idempotent: prints the binary's path and exits when
# it is already built. Offline after `npm pack`: the web UI download and libcurl are off.
# Usage: scripts/llama-server.sh [--print]   (--print: print the cached path if built, else exit 1; build nothing)
# Env: MICROAGENT_LLAMA_CACHE (default ~/.cache/microagent/llama-server), MICROAGENT_LLAMA_JOBS (default 2).
set -euo pipefail

PKG=node-llama-cpp@3.21.1
CACHE=${MICROAGENT_LLAMA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/microagent/llama-server}
JOBS=${MICROAGENT_LLAMA_JOBS:-2}
say() { echo "llama-server: $*" >&2; }

if [ "${1:-}" = "--print" ]; then
  found=$(ls -1 "$CACHE"/*/llama-server 2>/dev/null | head -n 1 || true)
  [ -n "$found" ] && { echo "$found"; exit 0; }
  exit 1
fi

command -v npm >/dev/null && command -v cmake >/dev/null && command -v git >/dev/null && command -v c++ >/dev/null ||
  { say "needs npm, cmake, git and a C++ compiler"; exit 1; }

mkdir -p "$CACHE"
pack=$(mktemp -d "$CACHE/.pack.XXXXXX")
trap 'rm -rf "$pack"' EXIT
(cd "$pack" && npm pack --silent "$PKG" >/dev/null 2>&1)
tar -xzf "$pack"/node-llama-cpp-*.tgz -C "$pack" package/llama/gitRelease.bundle
bundle="$pack/package/llama/gitRelease.bundle"
hash=$(sha256sum "$bundle" | cut -c1-16)
out="$CACHE/$hash/llama-server"
if [ -x "$out" ]; then echo "$out"; exit 0; fi

# The build directory is kept when a build is interrupted, so the next run resumes it (make is incremental).
work="$CACHE/.build-$hash"
if [ ! -f "$work/build/CMakeCache.txt" ]; then
  rm -rf "$work"
  mkdir -p "$work"
  say "building from $PKG (bundle $hash) with -j$JOBS; this takes a while on a small machine"
  git clone -q "$bundle" "$work/src" 2>/dev/null
  cmake -S "$work/src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF -DLLAMA_BUILD_UI=OFF \
    -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_OPENSSL=OFF -DGGML_NATIVE=OFF -DGGML_CUDA=OFF -DGGML_VULKAN=OFF -DGGML_METAL=OFF \
    -DBUILD_SHARED_LIBS=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=ON >"$work/cmake.log" 2>&1 ||
    { tail -n 40 "$work/cmake.log" >&2; exit 1; }
else
  say "resuming the build in $work"
fi
cmake --build "$work/build" --target llama-server -j "$JOBS" >>"$work/build.log" 2>&1 ||
  { tail -n 40 "$work/build.log" >&2; exit 1; }
mkdir -p "$CACHE/$hash"
cp "$work/build/bin/llama-server" "$CACHE/$hash/llama-server.partial"
mv "$CACHE/$hash/llama-server.partial" "$out"
rm -rf "$(readlink -f "$work")" "$work"
say "built $out"
echo "$out"

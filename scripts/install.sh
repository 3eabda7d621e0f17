#!/usr/bin/env bash
# Installs what microagent needs on a Debian 12 (bookworm) host. Idempotent: does nothing when all is present.
#   QEMU 10 + qemu-utils from bookworm-backports, e2fsprogs, kmod (depmod), busybox-static (default image), tmux (the console e2e tests),
#   cpio, image tooling (zstd/libzstd1 for zstd layers; docker-registry, skopeo, umoci, debootstrap, apache2-utils
#   and attr for the image tests and bench/image.sh), and the Debian cloud kernel package (fetched with `apt-get download`, installed by `microagent kernel install`);
#   cmake, g++ and git, and llama.cpp's llama-server built once from node-llama-cpp@3.21.1 (scripts/llama-server.sh; the model runner tests).
# Usage: scripts/install.sh [--check]   (--check: report what is missing, change nothing)
set -euo pipefail

KERNEL_CACHE=${MICROAGENT_KERNEL_CACHE:-/var/cache/microagent/kernel}
QEMU_MIN_MAJOR=10
check_only=0
[ "${1:-}" = "--check" ] && check_only=1

SUDO=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "install.sh: must run as root or with sudo available" >&2; exit 1; fi
fi

say() { echo "install: $*" >&2; }

qemu_ok() {
  command -v qemu-system-x86_64 >/dev/null 2>&1 || return 1
  local major
  major=$(qemu-system-x86_64 --version | sed -n 's/^QEMU emulator version \([0-9]*\).*/\1/p')
  [ "${major:-0}" -ge "$QEMU_MIN_MAJOR" ] && [ -e /usr/share/qemu/qboot.rom ] && command -v qemu-img >/dev/null 2>&1
}

missing=()
qemu_ok || missing+=("qemu")
for tool in node:nodejs npm:npm mke2fs:e2fsprogs debugfs:e2fsprogs depmod:kmod cpio:cpio dpkg-deb:dpkg tmux:tmux; do
  command -v "${tool%%:*}" >/dev/null 2>&1 || missing+=("${tool#*:}")
done
dpkg -s busybox-static >/dev/null 2>&1 || missing+=("busybox-static")
# Images: libzstd1 (zstd layers, P/Invoke); the rest drive the image tests and bench/image.sh.
IMAGE_PKGS=(libzstd1 zstd docker-registry skopeo umoci debootstrap apache2-utils attr libcap2-bin)
for pkg in "${IMAGE_PKGS[@]}"; do
  dpkg -s "$pkg" 2>/dev/null | grep -q '^Status: install ok installed' || missing+=("$pkg")
done
# llama-server (docs/ARCHITECTURE.md "Model runner"): built from source into a cache keyed by the llama.cpp bundle's hash.
LLAMA_PKGS=(cmake g++ make git)
for pkg in "${LLAMA_PKGS[@]}"; do
  dpkg -s "$pkg" 2>/dev/null | grep -q '^Status: install ok installed' || missing+=("$pkg")
done
LLAMA_SCRIPT="$(dirname -- "$0")/llama-server.sh"
llama_ok() { bash "$LLAMA_SCRIPT" --print >/dev/null 2>&1; }
build_llama() { llama_ok || { say "building llama-server (first time only; slow on a small machine)"; nice bash "$LLAMA_SCRIPT" >/dev/null; }; }
llama_ok || [ $check_only = 0 ] || missing+=("llama-server")
kernel_deb=$(ls -1 "$KERNEL_CACHE"/linux-image-*-cloud-amd64_*.deb 2>/dev/null | sort -V | tail -n 1 || true)
[ -n "$kernel_deb" ] || missing+=("kernel")

if [ ${#missing[@]} -eq 0 ]; then
  [ $check_only = 1 ] || build_llama
  say "everything present (QEMU $(qemu-system-x86_64 --version | head -n1 | awk '{print $4}'), kernel $(basename "$kernel_deb"))"
  exit 0
fi
if [ $check_only = 1 ]; then
  say "missing: ${missing[*]}"; exit 1
fi
say "installing: ${missing[*]}"

export DEBIAN_FRONTEND=noninteractive
if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
  say "adding bookworm-backports"
  echo 'deb http://deb.debian.org/debian bookworm-backports main' | $SUDO tee /etc/apt/sources.list.d/microagent-backports.list >/dev/null
fi
apt_updated=0
apt_update() { [ $apt_updated = 1 ] || { $SUDO apt-get update -q >/dev/null; apt_updated=1; }; }

apt_update
if ! qemu_ok; then
  say "QEMU ${QEMU_MIN_MAJOR} from bookworm-backports"
  $SUDO apt-get install -y -q --no-install-recommends -t bookworm-backports qemu-system-x86 qemu-utils >/dev/null
fi
$SUDO apt-get install -y -q --no-install-recommends e2fsprogs kmod cpio busybox-static tmux "${IMAGE_PKGS[@]}" "${LLAMA_PKGS[@]}" >/dev/null
# Node.js runs the official MCP TypeScript SDK client in the MCP tests; keep a newer one if present.
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || $SUDO apt-get install -y -q --no-install-recommends nodejs npm >/dev/null

if [ -z "$kernel_deb" ]; then
  pkg=$(apt-cache depends linux-image-cloud-amd64 | awk '/Depends: linux-image-/{print $2; exit}')
  [ -n "$pkg" ] || { say "cannot resolve linux-image-cloud-amd64"; exit 1; }
  say "downloading kernel package $pkg"
  $SUDO mkdir -p "$KERNEL_CACHE"
  tmp=$(mktemp -d)
  (cd "$tmp" && apt-get download -q "$pkg" >/dev/null 2>&1)
  $SUDO mv "$tmp"/*.deb "$KERNEL_CACHE"/
  rm -rf "$tmp"
fi
qemu_ok || { say "QEMU >= ${QEMU_MIN_MAJOR} still missing after install"; exit 1; }
build_llama
say "done"

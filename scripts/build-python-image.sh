#!/usr/bin/env bash
# Builds a Debian bookworm minbase image with python3 as an OCI layout (one gzip layer), for the image
# tests and bench/image.sh. Cached: the rootfs (debootstrap, slow) and the layout are reused when present.
# Usage: scripts/build-python-image.sh [OUT_LAYOUT_DIR]   (default build/images/python; needs root, debootstrap)
set -euo pipefail
out=${1:-build/images/python}
cache=$(dirname "$out")/python-rootfs
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
[ -f "$out/index.json" ] && { echo "python image: $out (cached)" >&2; exit 0; }
if [ ! -x "$cache/usr/bin/python3" ]; then
  rm -rf "$cache.tmp"
  echo "python image: debootstrap --variant=minbase --include=python3 bookworm (a few minutes, once)" >&2
  debootstrap --variant=minbase --include=python3-minimal,python3 bookworm "$cache.tmp" "$mirror" >/dev/null
  # Smaller: no apt lists, caches, docs or man pages.
  rm -rf "$cache.tmp"/var/lib/apt/lists/* "$cache.tmp"/var/cache/apt/*.bin "$cache.tmp"/var/cache/apt/archives/*.deb \
         "$cache.tmp"/usr/share/doc/* "$cache.tmp"/usr/share/man/* "$cache.tmp"/usr/share/locale/*
  rm -rf "$cache"; mv "$cache.tmp" "$cache"
fi
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/blobs/sha256"
tar --numeric-owner --xattrs --xattrs-include='*' --sort=name --mtime=@0 -C "$cache" -cf "$tmp/layer.tar" .
diff_id=$(sha256sum "$tmp/layer.tar" | cut -d' ' -f1)
gzip -1 -n "$tmp/layer.tar"
layer=$(sha256sum "$tmp/layer.tar.gz" | cut -d' ' -f1); lsize=$(stat -c %s "$tmp/layer.tar.gz")
mv "$tmp/layer.tar.gz" "$tmp/blobs/sha256/$layer"
printf '{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","LANG=C.UTF-8"],"Cmd":["python3"],"WorkingDir":"/root"},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' "$diff_id" > "$tmp/config"
config=$(sha256sum "$tmp/config" | cut -d' ' -f1); csize=$(stat -c %s "$tmp/config"); mv "$tmp/config" "$tmp/blobs/sha256/$config"
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%s}]}' \
  "$config" "$csize" "$layer" "$lsize" > "$tmp/manifest"
manifest=$(sha256sum "$tmp/manifest" | cut -d' ' -f1); msize=$(stat -c %s "$tmp/manifest"); mv "$tmp/manifest" "$tmp/blobs/sha256/$manifest"
printf '{"imageLayoutVersion":"1.0.0"}' > "$tmp/oci-layout"
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"3.11"}}]}' "$manifest" "$msize" > "$tmp/index.json"
rm -f "$tmp/layer.tar"
mkdir -p "$(dirname "$out")"; rm -rf "$out"; cp -r "$tmp" "$out"; chmod 755 "$out"
echo "python image: $out ($(du -sh "$out" | cut -f1), layer sha256:${layer:0:12})" >&2

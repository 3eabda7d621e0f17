#!/usr/bin/env bash
# Builds microagent's default image as an OCI image layout (image-spec image-layout.md) in OUTDIR:
# one gzip layer with a static busybox, its applet symlinks, /etc/passwd and /etc/group, and the
# usual top-level directories. Output is deterministic (same busybox => same digests) and the
# script is idempotent: it builds in a temporary directory and replaces OUTDIR at the end.
#
#   scripts/build-default-image.sh build/images/default
#
# Needs: busybox-static (a statically linked /bin/busybox; override with $BUSYBOX), GNU tar, gzip, sha256sum.
set -euo pipefail
export LC_ALL=C

out=${1:?usage: $0 OUTDIR}
busybox=${BUSYBOX:-/bin/busybox}

die() { echo "build-default-image: $*" >&2; exit 1; }
[[ -x $busybox ]] || die "$busybox not found; install busybox-static (scripts/install.sh)"
if ldd "$busybox" >/dev/null 2>&1; then
  die "$busybox is dynamically linked; install busybox-static (it replaces busybox) or set BUSYBOX to a static one"
fi
for t in tar gzip sha256sum; do command -v "$t" >/dev/null || die "$t is required"; done

parent=$(dirname -- "$out")
mkdir -p -- "$parent"
work=$(mktemp -d "$parent/.default-image.XXXXXX")
trap 'rm -rf -- "$work"' EXIT
umask 022

root=$work/rootfs
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,root,tmp,proc,sys,dev,run,var,home}
install -m 0755 "$busybox" "$root/bin/busybox"
# Applet symlinks, as `busybox --install -s` would make them (absolute target /bin/busybox).
"$busybox" --list-full | while read -r applet; do
  [[ -n $applet && $applet != bin/busybox ]] || continue
  mkdir -p "$root/$(dirname -- "$applet")"
  ln -sfn /bin/busybox "$root/$applet"
done
[[ -L $root/bin/sh ]] || die "busybox has no sh applet"

printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' 'nobody:x:65534:65534:nobody:/nonexistent:/bin/false' > "$root/etc/passwd"
printf '%s\n' 'root:x:0:' 'nogroup:x:65534:' > "$root/etc/group"
printf '%s\n' 'microagent' > "$root/etc/hostname"
chmod 0644 "$root"/etc/{passwd,group,hostname}
chmod 0700 "$root/root"
chmod 1777 "$root/tmp"

blobs=$work/layout/blobs/sha256
mkdir -p "$blobs"
# Deterministic layer: sorted names, fixed mtime and owners, no gzip timestamp/name.
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --format=gnu \
    -C "$root" -cf "$work/layer.tar" $(cd "$root" && ls -A)
gzip -n -9 -c "$work/layer.tar" > "$work/layer.tar.gz"

sha() { sha256sum "$1" | cut -d' ' -f1; }
size() { stat -c %s "$1"; }
diff_id=$(sha "$work/layer.tar")
layer_digest=$(sha "$work/layer.tar.gz")
layer_size=$(size "$work/layer.tar.gz")
mv "$work/layer.tar.gz" "$blobs/$layer_digest"

printf '%s' '{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["/bin/sh"],"WorkingDir":"/"},"rootfs":{"type":"layers","diff_ids":["sha256:'"$diff_id"'"]},"history":[{"created_by":"scripts/build-default-image.sh (busybox-static)"}]}' > "$work/config.json"
config_digest=$(sha "$work/config.json")
config_size=$(size "$work/config.json")
mv "$work/config.json" "$blobs/$config_digest"

printf '%s' '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:'"$config_digest"'","size":'"$config_size"'},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:'"$layer_digest"'","size":'"$layer_size"'}]}' > "$work/manifest.json"
manifest_digest=$(sha "$work/manifest.json")
manifest_size=$(size "$work/manifest.json")
mv "$work/manifest.json" "$blobs/$manifest_digest"

printf '%s' '{"imageLayoutVersion":"1.0.0"}' > "$work/layout/oci-layout"
printf '%s' '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:'"$manifest_digest"'","size":'"$manifest_size"',"platform":{"architecture":"amd64","os":"linux"},"annotations":{"org.opencontainers.image.ref.name":"latest"}}]}' > "$work/layout/index.json"

rm -rf -- "$out"
mv "$work/layout" "$out"
echo "default image: $out (manifest sha256:$manifest_digest)"

# The bare QEMU boot floor shared by bench/boot.sh and bench/snapshot.sh (source it): the same kernel with an initramfs
# whose /init powers off at once, the same accelerator and machine. Needs MA (the microagent binary) and a warmed state dir.
# Defines `bare` (one boot + power-off) and removes its work directory on exit.
bare_accel=$($MA doctor --json | python3 -c 'import json,sys; print((json.load(sys.stdin)["accelerator"] or {}).get("name","tcg"))')
bare_kernel=$($MA kernel list --json | python3 -c 'import json,sys; ks=json.load(sys.stdin); print(next(k for k in ks if k["isDefault"])["kernelPath"])')
bare_work=$(mktemp -d)
mkdir -p "$bare_work/root/bin"
cp /bin/busybox "$bare_work/root/bin/busybox"
printf '#!/bin/busybox sh\n/bin/busybox poweroff -f\n' > "$bare_work/root/init"; chmod +x "$bare_work/root/init"
(cd "$bare_work/root" && find . | cpio -o -H newc --quiet > "$bare_work/bare.cpio")
if [ "$bare_accel" = kvm ]; then bare_machine=(-accel kvm -cpu host -M microvm,isa-serial=on,memory-backend=mem); else
  bare_machine=(-accel tcg -cpu max -M pc,memory-backend=mem -bios /usr/share/qemu/qboot.rom); fi
bare() {
  qemu-system-x86_64 -nodefaults -no-user-config -nographic -no-reboot "${bare_machine[@]}" -m 256M -smp 1 \
    -object memory-backend-memfd,id=mem,size=256M,share=on -kernel "$bare_kernel" -initrd "$bare_work/bare.cpio" \
    -append "console=ttyS0 quiet loglevel=3 panic=-1 reboot=t" -serial null >/dev/null 2>&1 </dev/null
}

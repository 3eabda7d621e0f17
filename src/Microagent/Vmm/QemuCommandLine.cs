using System.Globalization;

namespace Microagent.Vmm;

/// <summary>
/// Builds the qemu-system-x86_64 argument list for a <see cref="VmSpec"/> (docs/ARCHITECTURE.md "Kernels and boot", "Vsock").
/// Guest RAM is a shared memfd so the vhost-user backend can map it; vsock is
/// <c>vhost-user-vsock-pci</c> on <c>pc</c> (TCG) and <c>vhost-user-vsock-device</c> on <c>microvm</c> (KVM). A <c>pvpanic</c> ISA
/// device (ACPI <c>QEMU0001</c>, the guest's <c>pvpanic-mmio</c> driver) turns a guest kernel panic into QMP's
/// <c>GUEST_PANICKED</c>, and <c>-action panic=shutdown</c> then ends QEMU with a <c>SHUTDOWN</c> whose cause is
/// <c>guest-panic</c> (docs/ARCHITECTURE.md "Faults"). Disk errors keep QEMU's defaults: <c>werror=enospc</c> stops the VM on a
/// full host disk (the supervisor records it and continues the guest later), other errors are reported to the guest.
/// </summary>
internal static class QemuCommandLine
{
    /// <summary>
    /// The machine type under TCG, pinned (not the <c>pc</c> alias, which moves with QEMU upgrades): a saved VM state is only
    /// loadable into the same machine type (docs/ARCHITECTURE.md "Kernels and boot").
    /// </summary>
    public const string TcgMachineType = "pc-i440fx-10.0";

    /// <summary>The vCPU model under TCG.</summary>
    public const string TcgCpuModel = "max";

    /// <summary>
    /// TCG translation buffer in MiB (<c>-accel tcg,tb-size=</c>). QEMU's default is a 1 GiB buffer that only ever fills: an idle
    /// workspace kept ~70 MiB of it resident, mostly code translated once during boot. 48 MiB caps that with no measurable cost
    /// in QEMU CPU time for boot, first exec, steady execs or a busybox-heavy loop; 32 cost ~10 % on the loop and 16 thrashed on
    /// every exec (docs/ARCHITECTURE.md "Kernels and boot"; README "Host binary footprint").
    /// </summary>
    public const int TcgTranslationBufferMiB = 48;

    /// <summary>QEMU id of the vsock device (<c>device_del</c> unplugs it by this id; it must be gone before a state save).</summary>
    public const string VsockDeviceId = "vsock";

    /// <summary>QEMU id of the vhost-user chardev the vsock device uses.</summary>
    public const string VsockChardevId = "vsock0";

    /// <summary>The vsock device's driver under TCG (<c>pc</c>: PCI, hot-pluggable through ACPI; the only one snapshots support).</summary>
    public const string VsockPciDriver = "vhost-user-vsock-pci";

    /// <summary>
    /// The vsock device's PCI slot under TCG, pinned: a restored VM gets the device back by <c>device_add</c> after the other
    /// devices, and a saved state only loads when every device sits where it sat when it was saved.
    /// </summary>
    public const string VsockPciSlot = "0x10";

    /// <summary>Kernel arguments common to every boot: serial console, quiet, no reboot loops, fast paths for emulated hardware.</summary>
    public const string BaseKernelArgs =
        "console=ttyS0 quiet loglevel=3 panic=-1 reboot=t tsc=reliable no_timer_check " +
        "8250.nr_uarts=1 i8042.noaux i8042.nomux i8042.nopnp i8042.dumbkbd random.trust_cpu=on";

    /// <summary>The argument list (without the program name).</summary>
    public static IReadOnlyList<string> Build(VmSpec spec, AcceleratorChoice accel, QemuInstallation qemu)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(spec.MemoryMiB, 64);
        ArgumentOutOfRangeException.ThrowIfLessThan(spec.Cpus, 1);
        bool kvm = accel.Accelerator == Accelerator.Kvm;
        string mem = spec.MemoryMiB.ToString(CultureInfo.InvariantCulture) + "M";
        var a = new List<string>
        {
            "-nodefaults", "-no-user-config", "-nographic", "-no-reboot",
            "-msg", "timestamp=off",
            "-name", "microagent,debug-threads=on",
        };
        if (kvm)
        {
            a.AddRange(["-accel", "kvm", "-cpu", "host",
                "-M", "microvm,x-option-roms=off,pit=off,pic=off,rtc=off,isa-serial=on,memory-backend=mem"]);
        }
        else
        {
            a.AddRange(["-accel", $"tcg,tb-size={TcgTranslationBufferMiB}", "-cpu", TcgCpuModel, "-M", $"{TcgMachineType},memory-backend=mem"]);
            if (qemu.QbootRom is not null) a.AddRange(["-bios", qemu.QbootRom]);
        }
        a.AddRange([
            "-m", mem,
            "-smp", spec.Cpus.ToString(CultureInfo.InvariantCulture),
            "-object", $"memory-backend-memfd,id=mem,size={mem},share=on",
            "-kernel", spec.KernelPath,
            "-initrd", spec.InitrdPath,
            "-append", KernelArgs(spec),
            "-chardev", $"file,id=serial0,path={Escape(spec.SerialLogPath)}",
            "-serial", "chardev:serial0",
            "-qmp", $"unix:{Escape(spec.QmpSocketPath)},server=on,wait=off",
            "-drive", $"file={Escape(spec.RootDiskPath)},if=none,id=root,format={spec.RootDiskFormat},cache={(spec.Ephemeral ? "unsafe" : "writeback")},discard=unmap,detect-zeroes=unmap",
            "-device", kvm ? "virtio-blk-device,drive=root" : "virtio-blk-pci,drive=root",
        ]);
        for (int i = 0; i < spec.Disks.Count; i++)
        {
            var d = spec.Disks[i];
            a.AddRange([
                "-drive", $"file={Escape(d.Path)},if=none,id=data{i},format={d.Format},{(d.ReadOnly ? "readonly=on" : "readonly=off,discard=unmap")},cache=writeback",
                "-device", $"{(kvm ? "virtio-blk-device" : "virtio-blk-pci")},drive=data{i},serial={d.Serial}",
            ]);
        }
        a.AddRange([
            "-chardev", $"socket,id={VsockChardevId},path={Escape(spec.VhostUserSocketPath)}",
        ]);
        if (!spec.IncomingDefer) a.AddRange(["-device", kvm ? $"vhost-user-vsock-device,chardev={VsockChardevId},id={VsockDeviceId}" : $"{VsockPciDriver},chardev={VsockChardevId},id={VsockDeviceId},addr={VsockPciSlot}"]);
        a.AddRange(["-device", "pvpanic", "-action", "panic=shutdown"]);
        if (spec.IncomingDefer) a.AddRange(["-incoming", "defer"]);
        return a;
    }

    /// <summary>The full kernel command line for <paramref name="spec"/>.</summary>
    public static string KernelArgs(VmSpec spec) => KernelArgs(spec.Hostname, spec.ExtraKernelArgs);

    /// <summary>The full kernel command line of a boot with <paramref name="hostname"/> and <paramref name="extra"/> arguments.</summary>
    public static string KernelArgs(string hostname, string extra = "")
    {
        string args = $"{BaseKernelArgs} microagent.hostname={hostname}";
        return string.IsNullOrWhiteSpace(extra) ? args : $"{args} {extra.Trim()}";
    }

    /// <summary>QEMU option values separate keys with commas; a literal comma is written twice.</summary>
    public static string Escape(string value) => value.Replace(",", ",,", StringComparison.Ordinal);
}

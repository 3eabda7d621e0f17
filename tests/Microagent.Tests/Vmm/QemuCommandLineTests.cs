using Microagent.Vmm;

namespace Microagent.Tests.Vmm;

public sealed class QemuCommandLineTests
{
    private static readonly QemuInstallation Qemu = new("/usr/bin/qemu-system-x86_64", "/usr/bin/qemu-img", new Version(10, 0, 2), "/usr/share/qemu/qboot.rom");

    private static VmSpec Spec(string dir = "/tmp/ws") => new()
    {
        KernelPath = "/k/vmlinuz", InitrdPath = "/k/initrd", RootDiskPath = $"{dir}/root.qcow2",
        VhostUserSocketPath = $"{dir}/vhost-user.sock", QmpSocketPath = $"{dir}/qmp.sock", SerialLogPath = $"{dir}/serial.log",
        MemoryMiB = 512, Cpus = 2, Hostname = "box",
    };

    private static string Value(IReadOnlyList<string> args, string flag, int nth = 0) =>
        args.Select((a, i) => (a, i)).Where(x => x.a == flag).Select(x => args[x.i + 1]).ElementAt(nth);

    [Fact]
    public void Tcg_uses_pc_with_qboot_and_a_shared_memfd()
    {
        var args = QemuCommandLine.Build(Spec(), new AcceleratorChoice(Accelerator.Tcg, "test", true, "pvm-only"), Qemu);
        Assert.Equal($"tcg,tb-size={QemuCommandLine.TcgTranslationBufferMiB}", Value(args, "-accel"));
        Assert.Equal("pc-i440fx-10.0,memory-backend=mem", Value(args, "-M")); // pinned, not the moving "pc" alias
        Assert.Equal("/usr/share/qemu/qboot.rom", Value(args, "-bios"));
        Assert.Equal("memory-backend-memfd,id=mem,size=512M,share=on", Value(args, "-object"));
        Assert.Equal("512M", Value(args, "-m"));
        Assert.Equal("2", Value(args, "-smp"));
        Assert.Contains("vhost-user-vsock-pci,chardev=vsock0,id=vsock,addr=0x10", args); // pinned slot: a restore plugs it back there
        Assert.Contains("virtio-blk-pci,drive=root", args);
        Assert.Contains("-no-reboot", args);
        Assert.Contains("-nodefaults", args);
        Assert.DoesNotContain("-incoming", args);
    }

    [Fact]
    public void A_restore_starts_without_the_vsock_device_and_waits_for_an_incoming_state()
    {
        var args = QemuCommandLine.Build(Spec() with { IncomingDefer = true }, new AcceleratorChoice(Accelerator.Tcg, "test", true, "pvm-only"), Qemu);
        Assert.Equal("defer", Value(args, "-incoming"));
        Assert.DoesNotContain(args, a => a.Contains("vhost-user-vsock", StringComparison.Ordinal));
        Assert.Contains(args, a => a.StartsWith("socket,id=vsock0,path=", StringComparison.Ordinal)); // the chardev device_add will use
        Assert.Equal("pc-i440fx-10.0,memory-backend=mem", Value(args, "-M"));
    }

    [Fact]
    public void Kvm_uses_microvm_with_mmio_devices()
    {
        var args = QemuCommandLine.Build(Spec(), new AcceleratorChoice(Accelerator.Kvm, "test", true, "works"), Qemu);
        Assert.Equal("kvm", Value(args, "-accel"));
        Assert.Equal("host", Value(args, "-cpu"));
        Assert.StartsWith("microvm,", Value(args, "-M"));
        Assert.DoesNotContain("-bios", args);
        Assert.Contains("vhost-user-vsock-device,chardev=vsock0,id=vsock", args);
        Assert.Contains("virtio-blk-device,drive=root", args);
    }

    [Fact]
    public void Commas_in_paths_are_escaped()
    {
        var args = QemuCommandLine.Build(Spec("/tmp/a,b"), new AcceleratorChoice(Accelerator.Tcg, "t", false, "absent"), Qemu);
        Assert.Contains(args, a => a.StartsWith("file=/tmp/a,,b/root.qcow2,if=none", StringComparison.Ordinal));
        Assert.Equal("socket,id=vsock0,path=/tmp/a,,b/vhost-user.sock", Value(args, "-chardev", 1));
    }

    [Fact]
    public void Kernel_args_carry_the_hostname_and_extra_args()
    {
        string args = QemuCommandLine.KernelArgs(Spec() with { ExtraKernelArgs = " debug " });
        Assert.Contains("console=ttyS0", args);
        Assert.Contains("microagent.hostname=box", args);
        Assert.EndsWith(" debug", args);
    }

    [Fact]
    public void Ephemeral_disks_skip_flushes()
    {
        var tcg = new AcceleratorChoice(Accelerator.Tcg, "t", false, "absent");
        Assert.Contains("cache=unsafe", Value(QemuCommandLine.Build(Spec() with { Ephemeral = true }, tcg, Qemu), "-drive"));
        Assert.Contains("cache=writeback", Value(QemuCommandLine.Build(Spec(), tcg, Qemu), "-drive"));
    }

    [Theory]
    [InlineData("QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-2+deb13u1~bpo12+1)", 10, 0, 2)]
    [InlineData("QEMU emulator version 7.2.19", 7, 2, 19)]
    [InlineData("QEMU emulator version 9.1", 9, 1, 0)]
    public void Parses_qemu_versions(string text, int major, int minor, int build)
    {
        Assert.Equal(new Version(major, minor, build), QemuInstallation.ParseVersion(text));
    }

    [Fact]
    public void Unparseable_version_is_a_typed_error()
    {
        var e = Assert.Throws<Microagent.Errors.MicroagentException>(() => QemuInstallation.ParseVersion("something else"));
        Assert.Equal(Microagent.Errors.ErrorKind.Permanent, e.Kind);
    }
}

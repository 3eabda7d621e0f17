using Microagent.Vmm;

namespace Microagent.Tests.Vmm;

public sealed class QemuDataDiskTests
{
    private static readonly QemuInstallation Qemu = new("/usr/bin/qemu-system-x86_64", "/usr/bin/qemu-img", new Version(10, 0, 2), "/usr/share/qemu/qboot.rom");

    private static VmSpec Spec(params VmDisk[] disks) => new()
    {
        KernelPath = "/k/vmlinuz", InitrdPath = "/k/initrd", RootDiskPath = "/ws/root.qcow2",
        VhostUserSocketPath = "/ws/vhost-user.sock", QmpSocketPath = "/ws/qmp.sock", SerialLogPath = "/ws/serial.log", Disks = disks,
    };

    [Fact]
    public void Data_disks_follow_the_root_disk_with_their_serial_and_mode()
    {
        var args = QemuCommandLine.Build(Spec(new VmDisk("/d/a,b.ext4", "raw", true, "ma0-a"), new VmDisk("/ws/disks/s.qcow2", "qcow2", false, "ma1-s")),
            new AcceleratorChoice(Accelerator.Tcg, "test", true, "pvm-only"), Qemu);
        var drives = args.Select((a, i) => (a, i)).Where(x => x.a == "-drive").Select(x => args[x.i + 1]).ToList();
        Assert.Equal(3, drives.Count);
        Assert.StartsWith("file=/ws/root.qcow2,", drives[0]); // the root disk stays first: it is /dev/vda
        Assert.Equal("file=/d/a,,b.ext4,if=none,id=data0,format=raw,readonly=on,cache=writeback", drives[1]);
        Assert.Equal("file=/ws/disks/s.qcow2,if=none,id=data1,format=qcow2,readonly=off,discard=unmap,cache=writeback", drives[2]);
        Assert.Contains("virtio-blk-pci,drive=data0,serial=ma0-a", args);
        Assert.Contains("virtio-blk-pci,drive=data1,serial=ma1-s", args);
    }

    [Fact]
    public void Under_kvm_data_disks_are_mmio_devices()
    {
        var args = QemuCommandLine.Build(Spec(new VmDisk("/d/x.ext4", "raw", false, "ma0-x")), new AcceleratorChoice(Accelerator.Kvm, "test", true, "works"), Qemu);
        Assert.Contains("virtio-blk-device,drive=data0,serial=ma0-x", args);
    }
}

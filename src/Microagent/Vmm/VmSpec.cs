namespace Microagent.Vmm;

/// <summary>Everything QEMU needs to boot one workspace VM.</summary>
internal sealed record VmSpec
{
    /// <summary>Verified kernel image.</summary>
    public required string KernelPath { get; init; }
    /// <summary>Initramfs carrying the guest agent and the modules it loads.</summary>
    public required string InitrdPath { get; init; }
    /// <summary>Root disk (qcow2 overlay on the image baseline).</summary>
    public required string RootDiskPath { get; init; }
    /// <summary>Root disk format.</summary>
    public string RootDiskFormat { get; init; } = "qcow2";
    /// <summary>Guest memory in MiB.</summary>
    public int MemoryMiB { get; init; } = 256;
    /// <summary>Virtual CPUs.</summary>
    public int Cpus { get; init; } = 1;
    /// <summary>Guest hostname (passed to the agent on the kernel command line).</summary>
    public string Hostname { get; init; } = "workspace";
    /// <summary>Unix socket our vhost-user-vsock backend listens on.</summary>
    public required string VhostUserSocketPath { get; init; }
    /// <summary>Unix socket QEMU serves QMP on.</summary>
    public required string QmpSocketPath { get; init; }
    /// <summary>File the guest serial console is written to.</summary>
    public required string SerialLogPath { get; init; }
    /// <summary>The disk is thrown away after the VM: skip flushes (cache=unsafe).</summary>
    public bool Ephemeral { get; init; }
    /// <summary>Data disks after the root disk, each a virtio-blk device identified by its serial (docs/ARCHITECTURE.md "Images and disks").</summary>
    public IReadOnlyList<VmDisk> Disks { get; init; } = [];
    /// <summary>Restore a saved VM state (docs/ARCHITECTURE.md "Snapshots"): start with <c>-incoming defer</c> and without the vsock device (it is not migratable; it is added once the state is loaded).</summary>
    public bool IncomingDefer { get; init; }
    /// <summary>Extra kernel command line arguments.</summary>
    public string ExtraKernelArgs { get; init; } = "";
}

/// <summary>A data disk of a VM.</summary>
/// <param name="Path">Host image file.</param>
/// <param name="Format">raw or qcow2.</param>
/// <param name="ReadOnly">QEMU opens it read-only and the guest sees a read-only device.</param>
/// <param name="Serial">virtio-blk serial (at most 20 bytes) the guest finds it by.</param>
internal sealed record VmDisk(string Path, string Format, bool ReadOnly, string Serial);

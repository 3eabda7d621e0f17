using Microagent.Images;
using Microagent.Kernels;
using Microagent.Mediation;

namespace Microagent.Workspaces;

/// <summary>
/// What a create or run would do, resolved and checked but not done (<c>--dry-run</c>): the image and whether its baseline is
/// already built, the kernel, the resources, the disks and the network. Nothing is pulled, written or booted.
/// </summary>
/// <param name="Operation">create or run.</param>
/// <param name="Name">The workspace name (a run's is generated when it happens).</param>
/// <param name="Image">The image as given ("default" for the embedded one).</param>
/// <param name="ImageDigest">Its manifest digest when its baseline is built; null when the run or create would pull or build it.</param>
/// <param name="Kernel">The kernel that would boot (version, path, sha256); null when none is installed.</param>
/// <param name="Profile">Resource profile.</param>
/// <param name="MemoryMiB">Guest memory.</param>
/// <param name="Cpus">vCPUs.</param>
/// <param name="DiskMiB">Root disk size (at least the baseline's).</param>
/// <param name="TtlSeconds">Idle lease; 0 = permanent.</param>
/// <param name="Disks">Block devices the guest would get, in order.</param>
/// <param name="Network">The guest's network: its mode, egress policy and published ports (no NIC either way; see docs/ARCHITECTURE.md "Networking").</param>
/// <param name="Vsock">Guest→host TCP mappings.</param>
/// <param name="Mediation">The mediation channel, if any.</param>
/// <param name="Command">A run's argv (resolved against the image when its baseline is built), or a create's workload.</param>
/// <param name="Notes">What would happen first (a pull, a kernel install) or would fail.</param>
public sealed record WorkspacePlan(string Operation, string? Name, string Image, string? ImageDigest, InstalledKernel? Kernel, string Profile,
    int MemoryMiB, int Cpus, int DiskMiB, int TtlSeconds, IReadOnlyList<PlannedDisk> Disks, string Network, IReadOnlyList<VsockMapping> Vsock,
    MediationConfig? Mediation, IReadOnlyList<string> Command, IReadOnlyList<string> Notes);

/// <summary>A block device of a planned workspace.</summary>
/// <param name="Device">Guest device (vda is the root).</param>
/// <param name="Path">Host file.</param>
/// <param name="Mode">rw or ro.</param>
/// <param name="Backing">The baseline it is a copy-on-write overlay on, when known.</param>
public sealed record PlannedDisk(string Device, string Path, string Mode, string? Backing)
{
    /// <summary>Guest mount point of a data disk; null for the root disk.</summary>
    public string? Target { get; init; }
    /// <summary>root, or a data disk's kind (image, bundle, volume).</summary>
    public string Kind { get; init; } = "root";
    /// <summary>A data disk's source as given (host path or volume name).</summary>
    public string? Source { get; init; }
}

/// <summary>Builds <see cref="WorkspacePlan"/>s from local state only.</summary>
internal static class WorkspacePlanner
{

    public static WorkspacePlan Plan(StatePaths paths, string operation, string? name, WorkspaceSpec spec, int memoryMiB, int cpus, int sizeMiB,
        int ttlSeconds, string profile, Func<Images.ImageConfig?, IReadOnlyList<string>> command)
    {
        var notes = new List<string>();
        var baseline = new ImageStore(paths).FindCached(spec.Image);
        string image = spec.Image ?? "default";
        if (baseline is null) notes.Add($"{image} is not cached: it would be pulled or built first");
        var kernels = new KernelStore(paths);
        var kernel = kernels.GetDefault();
        if (kernel is null)
            notes.Add(KernelStore.FindDefaultDeb() is { } deb ? $"no kernel installed: {deb} would be installed first" : "no kernel installed and no default package: it would fail (run `microagent kernel install`)");
        string dir = name is null ? Path.Combine(paths.Workspaces, "run-<generated>") : new WorkspaceStore(paths, name).Dir;
        long baselineMiB = baseline is null || !File.Exists(baseline.Path) ? 0 : (new FileInfo(baseline.Path).Length + (1 << 20) - 1) >> 20;
        var disks = new List<PlannedDisk> { new("vda", Path.Combine(dir, "root.qcow2"), "rw", baseline?.Path) };
        disks.AddRange(Volumes.DataDisks.Plan(paths, spec.Disks, notes));
        return new WorkspacePlan(operation, name, image, baseline?.ManifestDigest, kernel, profile, memoryMiB, cpus, (int)Math.Max(sizeMiB, baselineMiB),
            ttlSeconds, disks, (spec.Network ?? new Networking.NetworkSpec()).Resolve().ToString(), spec.Vsock, spec.Mediation, command(baseline?.Config), notes);
    }
}

using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Microagent.Workspaces.Snapshots;

namespace Microagent.Workspaces.Templates;

/// <summary>
/// A warm-start template (docs/ARCHITECTURE.md "Snapshots", "Warm start"): a VM saved once its agent was ready and before
/// anything of a workspace (identity, network, mounts, setup) was applied. A restore is valid only into a VM that matches every
/// property here, so every one of them goes into <see cref="Key"/> and is checked again before a restore.
/// </summary>
public sealed record TemplateManifest
{
    /// <summary>The key (<see cref="KeyOf"/> of the other properties): the template's directory name.</summary>
    public string Key { get; init; } = "";
    /// <summary>When it was captured.</summary>
    public DateTimeOffset Created { get; init; }
    /// <summary>The image reference it was first made for (for people; the digest is what matters).</summary>
    public string? Image { get; init; }
    /// <summary>The image manifest digest of the root disk's baseline.</summary>
    public string ImageDigest { get; init; } = "";
    /// <summary>The root disk's virtual size in MiB (the guest sees it; a restored disk has the same).</summary>
    public int SizeMiB { get; init; }
    /// <summary>Guest memory in MiB.</summary>
    public int MemoryMiB { get; init; }
    /// <summary>vCPUs.</summary>
    public int Cpus { get; init; }
    /// <summary>sha256 of the guest kernel image.</summary>
    public string KernelSha256 { get; init; } = "";
    /// <summary>The guest kernel release (uname -r), for people.</summary>
    public string? KernelRelease { get; init; }
    /// <summary>The initramfs file (named by the hash of everything in it: agent, libraries, modules).</summary>
    public string Initramfs { get; init; } = "";
    /// <summary>The guest agent build (<see cref="AgentBuild"/>).</summary>
    public string AgentBuild { get; init; } = "";
    /// <summary>QEMU's version (x.y.z).</summary>
    public string QemuVersion { get; init; } = "";
    /// <summary>QEMU machine type (pinned).</summary>
    public string MachineType { get; init; } = "";
    /// <summary>QEMU CPU model.</summary>
    public string CpuModel { get; init; } = "";
    /// <summary>The whole kernel command line the template was booted with (its hostname is the neutral <see cref="TemplateStore.BootHostname"/>).</summary>
    public string KernelArgs { get; init; } = "";
    /// <summary>The frozen disk layer: a file name under <c>templates/layers/</c>.</summary>
    public string? DiskLayer { get; init; }
    /// <summary>The workspace whose first boot captured it.</summary>
    public string? CapturedBy { get; init; }

    /// <summary>The key over every property a restore must match: 16 hex digits of a sha256 over them, one per line.</summary>
    public string KeyOf()
    {
        string text = string.Join('\n', "microagent-template-v1", ImageDigest, SizeMiB.ToString(CultureInfo.InvariantCulture),
            MemoryMiB.ToString(CultureInfo.InvariantCulture), Cpus.ToString(CultureInfo.InvariantCulture), KernelSha256, Initramfs, AgentBuild,
            QemuVersion, MachineType, CpuModel, KernelArgs);
        return Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(text)))[..16].ToLowerInvariant();
    }

    /// <summary>This manifest with its <see cref="Key"/> computed.</summary>
    public TemplateManifest WithKey() => this with { Key = KeyOf() };

    /// <summary>The first property that differs from <paramref name="target"/> (a description naming both values), or null when a restore into it is valid.</summary>
    public string? MismatchWith(TemplateManifest target)
    {
        if (KeyOf() != Key) return $"its manifest does not match its key {Key} (edited or damaged)";
        try { SnapshotCompatibility.EnsureLoadable("template", ToSnapshotManifest(), target.ToSnapshotManifest()); }
        catch (SnapshotMismatchException e) { return $"it was taken with {e.Property} {e.SnapshotValue}, but this host has {e.WorkspaceValue}"; }
        (string Name, string Have, string Want)[] more =
        [
            ("image", ImageDigest, target.ImageDigest), ("disk size", $"{SizeMiB} MiB", $"{target.SizeMiB} MiB"),
            ("initramfs", Initramfs, target.Initramfs), ("kernel command line", KernelArgs, target.KernelArgs),
        ];
        foreach (var (name, have, want) in more)
            if (have != want) return $"it was taken with {name} {have}, but this host has {want}";
        return null;
    }

    /// <summary>The snapshot manifest a restore loads (the same checks and steps as a snapshot's).</summary>
    internal SnapshotManifest ToSnapshotManifest() => new()
    {
        Tag = Key, Created = Created, ImageDigest = ImageDigest, KernelSha256 = KernelSha256, KernelRelease = KernelRelease,
        QemuVersion = QemuVersion, MachineType = MachineType, CpuModel = CpuModel, MemoryMiB = MemoryMiB, Cpus = Cpus,
        AgentVersion = AgentBuild, DiskLayer = DiskLayer, BootHostname = TemplateStore.BootHostname, Workspace = "template",
    };
}

/// <summary>One stored template.</summary>
/// <param name="Manifest">What it was captured with.</param>
/// <param name="Directory">Its directory.</param>
/// <param name="SizeBytes">Apparent size of its memory file, manifest and disk layer (the memory file is sparse).</param>
/// <param name="Stale">Why this host would not restore it (kernel, agent, QEMU changed...); null when it is current.</param>
/// <param name="UsedBy">Workspaces whose disk is an overlay on its layer (the layer stays while they need it).</param>
public sealed record TemplateInfo(TemplateManifest Manifest, string Directory, long SizeBytes, string? Stale, IReadOnlyList<string> UsedBy);

/// <summary>What <c>template prune</c> did.</summary>
/// <param name="Removed">Keys of the templates removed.</param>
/// <param name="Kept">Keys kept (current ones without <c>--all</c>, or one being captured now).</param>
/// <param name="ReclaimedBytes">Bytes freed (templates and the disk layers nothing needs any more).</param>
public sealed record TemplatePruneResult(IReadOnlyList<string> Removed, IReadOnlyList<string> Kept, long ReclaimedBytes);

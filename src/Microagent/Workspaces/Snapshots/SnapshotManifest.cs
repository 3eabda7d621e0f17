using System.Text.Json.Serialization;
using Microagent.Errors;

namespace Microagent.Workspaces.Snapshots;

/// <summary>
/// What a snapshot was taken with (docs/ARCHITECTURE.md "Snapshots"): a saved VM state loads only into a VM with the same
/// kernel, QEMU, machine type, CPU model, memory size and agent build, so each is recorded and checked before a restore.
/// Stored as <c>manifest.json</c> in the snapshot's directory.
/// </summary>
public sealed record SnapshotManifest
{
    /// <summary>Version of this record's layout.</summary>
    public int Version { get; init; } = 1;
    /// <summary>The snapshot's tag.</summary>
    public string Tag { get; init; } = "";
    /// <summary>When the capture finished.</summary>
    public DateTimeOffset Created { get; init; }
    /// <summary>The workspace's image digest (its source image).</summary>
    public string? ImageDigest { get; init; }
    /// <summary>sha256 of the guest kernel image.</summary>
    public string KernelSha256 { get; init; } = "";
    /// <summary>The guest kernel release (uname -r), for people.</summary>
    public string? KernelRelease { get; init; }
    /// <summary>QEMU's version (x.y.z).</summary>
    public string QemuVersion { get; init; } = "";
    /// <summary>QEMU machine type, pinned (<c>pc-i440fx-10.0</c>).</summary>
    public string MachineType { get; init; } = "";
    /// <summary>QEMU CPU model.</summary>
    public string CpuModel { get; init; } = "";
    /// <summary>Guest memory in MiB.</summary>
    public int MemoryMiB { get; init; }
    /// <summary>vCPUs.</summary>
    public int Cpus { get; init; }
    /// <summary>The guest agent's build (<see cref="AgentBuild"/>: its version and the sha256 of its binary).</summary>
    public string AgentVersion { get; init; } = "";
    /// <summary>The workspace it was taken of.</summary>
    public string? Workspace { get; init; }
    /// <summary>The frozen disk layer (a file name under the workspace's <c>layers/</c>): restores and forks put a new overlay on it.</summary>
    public string? DiskLayer { get; init; }
    /// <summary>The hostname on the saved VM's kernel command line (a restored QEMU is started with the same arguments).</summary>
    public string? BootHostname { get; init; }
    /// <summary>
    /// A forensic capture of a quarantine (docs/ARCHITECTURE.md "Quarantine"): a memory dump (<see cref="SnapshotStore.ForensicMemoryFile"/>,
    /// an ELF core) and the frozen disk layer, for inspection. Not restorable: <c>start --from-snapshot</c> and forks refuse it.
    /// </summary>
    public bool Forensic { get; init; }
}

/// <summary>
/// The one rule for restoring a snapshot into a VM: every recorded property must equal the target's. A mismatch is a
/// <see cref="SnapshotMismatchException"/> naming the property and both values.
/// </summary>
public static class SnapshotCompatibility
{
    /// <summary>The properties that must match, in the order they are checked (the first mismatch is reported).</summary>
    private static readonly (string Name, Func<SnapshotManifest, string> Value)[] Checked =
    [
        ("kernel sha256", m => m.KernelSha256),
        ("QEMU version", m => m.QemuVersion),
        ("machine type", m => m.MachineType),
        ("CPU model", m => m.CpuModel),
        ("memory", m => $"{m.MemoryMiB} MiB"),
        ("vCPUs", m => m.Cpus.ToString(System.Globalization.CultureInfo.InvariantCulture)),
        ("agent build", m => m.AgentVersion),
    ];

    /// <summary>Throws <see cref="SnapshotNotRestorableException"/> when <paramref name="snapshot"/> is a forensic capture.</summary>
    public static void EnsureRestorable(string workspace, SnapshotManifest snapshot)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        if (snapshot.Forensic) throw new SnapshotNotRestorableException(workspace, snapshot.Tag);
    }

    /// <summary>Throws unless <paramref name="snapshot"/> can be loaded into a VM described by <paramref name="target"/> (a forensic capture never can).</summary>
    public static void EnsureLoadable(string workspace, SnapshotManifest snapshot, SnapshotManifest target)
    {
        EnsureRestorable(workspace, snapshot);
        foreach (var (name, value) in Checked)
        {
            string have = value(snapshot), want = value(target);
            if (!string.Equals(have, want, StringComparison.Ordinal))
                throw new SnapshotMismatchException(workspace, snapshot.Tag, name, have, want);
        }
    }
}

/// <summary>A snapshot was taken with something other than what the workspace would restore it with (<see cref="ErrorKind.Conflict"/>).</summary>
public sealed class SnapshotMismatchException(string workspace, string tag, string property, string snapshotValue, string workspaceValue)
    : MicroagentException(ErrorKind.Conflict,
        $"snapshot '{tag}' of workspace '{workspace}' was taken with {property} {snapshotValue}, but the workspace now has {workspaceValue}",
        $"a saved VM state loads only with the same {property}: take a new snapshot (`microagent snapshot create {workspace}`) or boot from disk (`microagent start {workspace}`)")
{
    /// <summary>The property that differs.</summary>
    public string Property { get; } = property;
    /// <summary>Its value in the snapshot's manifest.</summary>
    public string SnapshotValue { get; } = snapshotValue;
    /// <summary>Its value for the workspace now.</summary>
    public string WorkspaceValue { get; } = workspaceValue;
}

/// <summary>A forensic snapshot (a quarantine's capture) was asked to be restored or forked (<see cref="ErrorKind.Conflict"/>).</summary>
public sealed class SnapshotNotRestorableException(string workspace, string tag)
    : MicroagentException(ErrorKind.Conflict,
        $"snapshot '{tag}' of workspace '{workspace}' is a forensic capture of a quarantine: it is kept for inspection and cannot be restored or forked",
        $"inspect its memory dump and disk layer under the workspace's snapshots/{tag}/; boot from disk instead: `microagent start {workspace}`")
{
    /// <summary>The tag asked for.</summary>
    public string Tag { get; } = tag;
}

/// <summary>Source-generated JSON of snapshot manifests.</summary>
[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(SnapshotManifest))]
[JsonSerializable(typeof(PendingRestore))]
[JsonSerializable(typeof(Templates.TemplateManifest))]
internal sealed partial class SnapshotJson : JsonSerializerContext;

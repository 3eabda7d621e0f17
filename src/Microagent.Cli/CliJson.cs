using System.Text.Json;
using System.Text.Json.Serialization;
using Microagent.Images;
using Microagent.Kernels;
using Microagent.Workspaces;

namespace Microagent.Cli;

// The documents `--json` prints that are not library types: named records (serialized camelCase), so the
// source generator knows every shape and the NativeAOT binary needs no reflection (docs/ARCHITECTURE.md "Binaries").

/// <summary><c>connect --send --json</c>: the line's output and status.</summary>
internal sealed record ConsoleSendJson(string Workspace, string Output, int ExitCode, long DurationMs);

internal sealed record ExecJson(string Workspace, string Status, int ExitCode, int? Signal, string? Stdout, string? Stderr,
    bool StdoutTruncated, bool StderrTruncated, long DurationMs, string? Error, bool? OomKilled, string? Note);

internal sealed record RunJson(string Workspace, string Status, int ExitCode, int? Signal, string? Stdout, string? Stderr,
    bool StdoutTruncated, bool StderrTruncated, string? Error, string Accelerator, RunTimings Timings, string? KeptAt)
{
    /// <summary>The template a warm start restored; null when the VM booted cold.</summary>
    public string? WarmFrom { get; init; }
    /// <summary>Why the VM booted cold; null for a warm start.</summary>
    public string? ColdReason { get; init; }
}

internal sealed record DoctorAcceleratorJson(string Name, string Machine, string Reason, bool Probed, string Kvm);

internal sealed record DoctorCheckJson(string Name, string Status, string Detail, string? Remediation);

internal sealed record DoctorJson(bool Healthy, string StateDir, DoctorAcceleratorJson? Accelerator, IReadOnlyList<DoctorCheckJson> Checks);

internal sealed record ImageJson(IReadOnlyList<string> References, string Digest, string Platform, string Baseline, long BaselineBytes,
    long ContentBytes, long CompressedBytes, int Layers, DateTimeOffset Created, ImageConfig Config, IReadOnlyList<string> UsedBy);

internal sealed record ImageRemovedJson(string? Removed, string? Baseline);

internal sealed record KernelJson(string Version, string KernelPath, string? ModulesDir, string Sha256, DateTimeOffset InstalledAt, string? Source, bool IsDefault);

internal sealed record KernelVerifiedJson(string Version, string Sha256, bool Verified);

internal sealed record RegistryLoginJson(string Registry, string Username, string Stored);

internal sealed record RegistryLogoutJson(string Registry, bool Removed);

internal sealed record RegistryEntryJson(string Registry, string Username);

internal sealed record LogsJson(string? Workspace, string Serial);

internal sealed record ModelDeletedJson(string Ref, bool Removed);

internal sealed record VersionJson(string Version, int Protocol);

internal sealed record SnapshotJson(string? Workspace, string Tag, DateTimeOffset Created, long SizeBytes, string? ImageDigest, string? KernelRelease,
    string KernelSha256, string QemuVersion, string MachineType, int MemoryMiB, int Cpus, string AgentBuild);

/// <summary>Source-generated type information for every <c>--json</c> document (see <see cref="Cli.Json"/>).</summary>
[JsonSerializable(typeof(WorkspaceStatus))]
[JsonSerializable(typeof(IReadOnlyList<WorkspaceStatus>))]
[JsonSerializable(typeof(WorkspaceStats))]
[JsonSerializable(typeof(IReadOnlyList<WorkspaceStats>))]
[JsonSerializable(typeof(Microagent.Workspaces.Containment.QuarantineResult))]
[JsonSerializable(typeof(WorkspaceEvent))]
[JsonSerializable(typeof(List<WorkspaceEvent>))]
[JsonSerializable(typeof(Microagent.Networking.EgressRecord))]
[JsonSerializable(typeof(List<Microagent.Networking.EgressRecord>))]
[JsonSerializable(typeof(WorkloadResult))]
[JsonSerializable(typeof(DeleteResult))]
[JsonSerializable(typeof(GcReport))]
[JsonSerializable(typeof(CopyResult))]
[JsonSerializable(typeof(PruneResult))]
[JsonSerializable(typeof(InstalledKernel))]
[JsonSerializable(typeof(ExecJson))]
[JsonSerializable(typeof(ConsoleSendJson))]
[JsonSerializable(typeof(SnapshotJson))]
[JsonSerializable(typeof(List<SnapshotJson>))]
[JsonSerializable(typeof(RunJson))]
[JsonSerializable(typeof(IReadOnlyList<Microagent.Workspaces.Templates.TemplateInfo>))]
[JsonSerializable(typeof(Microagent.Workspaces.Templates.TemplateInfo))]
[JsonSerializable(typeof(Microagent.Workspaces.Templates.TemplatePruneResult))]
[JsonSerializable(typeof(DoctorJson))]
[JsonSerializable(typeof(ImageJson))]
[JsonSerializable(typeof(List<ImageJson>))]
[JsonSerializable(typeof(ImageRemovedJson))]
[JsonSerializable(typeof(List<KernelJson>))]
[JsonSerializable(typeof(List<KernelVerifiedJson>))]
[JsonSerializable(typeof(RegistryLoginJson))]
[JsonSerializable(typeof(RegistryLogoutJson))]
[JsonSerializable(typeof(List<RegistryEntryJson>))]
[JsonSerializable(typeof(LogsJson))]
[JsonSerializable(typeof(VersionJson))]
[JsonSerializable(typeof(WorkspacePlan))]
[JsonSerializable(typeof(ImageTagResult))]
[JsonSerializable(typeof(KernelCheck))]
[JsonSerializable(typeof(KernelFileCheck))]
[JsonSerializable(typeof(IReadOnlyList<WorkspaceProfile>))]
[JsonSerializable(typeof(Microagent.Cli.Commands.NameOutcomesJson))]
[JsonSerializable(typeof(Microagent.Volumes.VolumeInfo))]
[JsonSerializable(typeof(Microagent.Models.ModelRecord))]
[JsonSerializable(typeof(IReadOnlyList<Microagent.Models.ModelRecord>))]
[JsonSerializable(typeof(Microagent.Models.ModelPruneResult))]
[JsonSerializable(typeof(Microagent.Models.ModelRunnerRecord))]
[JsonSerializable(typeof(IReadOnlyList<Microagent.Models.ModelRunnerRecord>))]
[JsonSerializable(typeof(Microagent.Models.ModelStopResult))]
[JsonSerializable(typeof(ModelDeletedJson))]
[JsonSerializable(typeof(IReadOnlyList<Microagent.Volumes.VolumeInfo>))]
[JsonSerializable(typeof(Microagent.Volumes.VolumeDeleteResult))]
internal sealed partial class CliJsonContext : JsonSerializerContext
{
    /// <summary>Options of every document: web defaults (camelCase), and quotes and backticks kept readable (output goes to a
    /// terminal or a JSON parser, never into HTML).</summary>
    public static JsonSerializerOptions CreateOptions(bool indented) => new(JsonSerializerDefaults.Web)
    {
        WriteIndented = indented,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };
}

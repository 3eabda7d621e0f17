using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using Microagent.Diagnostics;
using Microagent.Images;
using Microagent.Workspaces;

namespace Microagent.Mcp;

// The `result` part of each tool's envelope. Every result is one of these types (or a library record), serialized with
// McpJsonContext: the tool's outputSchema is exported from the same type information, so schema and content cannot drift.

/// <summary>microagent_ping.</summary>
public sealed record PingResult(bool Pong, string Version);

/// <summary>One operation in the describe manifest.</summary>
public sealed record OperationInfo(string Name, string Title, string Description, ToolHints Hints, JsonObject InputSchema, JsonObject OutputSchema);

/// <summary>One resource template in the describe manifest.</summary>
public sealed record ResourceTemplateInfo(string UriTemplate, string Name, string MimeType, string Description);

/// <summary>microagent_describe: the capability manifest.</summary>
public sealed record DescribeResult(string Name, string Version, int ProtocolVersion, string Backend, string? Accelerator, string? AcceleratorReason,
    bool Healthy, IReadOnlyList<OperationInfo> Operations, IReadOnlyList<ResourceTemplateInfo> ResourceTemplates, LimitsInfo Limits);

/// <summary>The accelerator doctor chose.</summary>
public sealed record AcceleratorInfo(string Name, string Machine, string Reason, bool Probed);

/// <summary>One doctor check.</summary>
public sealed record CheckInfo(string Name, string Status, string Detail, string? Remediation);

/// <summary>doctor_check.</summary>
public sealed record DoctorResult(bool Healthy, string StateDir, AcceleratorInfo? Accelerator, IReadOnlyList<CheckInfo> Checks)
{
    /// <summary>Maps the library's report.</summary>
    public static DoctorResult From(DoctorReport r) => new(r.Healthy, r.StateDir,
        r.Accelerator is { } a ? new AcceleratorInfo(a.Accelerator.ToString().ToLowerInvariant(), a.MachineType, a.Reason, a.Probed) : null,
        [.. r.Checks.Select(c => new CheckInfo(c.Name, c.Status.ToString().ToLowerInvariant(), c.Detail, c.Remediation))]);
}

/// <summary>workspace_exec: the command's outcome (a non-zero exit is a result, not an error).</summary>
public sealed record ExecOutput(string Status, int ExitCode, int? Signal, string Stdout, string Stderr, bool StdoutTruncated, bool StderrTruncated,
    long DurationMs, string? Error)
{
    /// <summary>Maps an exec result; streamed output (null in the result) comes from <paramref name="stdout"/> and <paramref name="stderr"/>.</summary>
    public static ExecOutput From(WorkspaceExecResult r, byte[]? stdout = null, byte[]? stderr = null) =>
        new(r.Status, r.ExitCode, r.Signal, Text(r.Stdout ?? stdout), Text(r.Stderr ?? stderr), r.StdoutTruncated, r.StderrTruncated, r.DurationMs, r.Error)
        {
            OomKilled = r.OomKilled, Note = r.Note,
        };

    /// <summary>The guest kernel's OOM killer chose this command; the workspace keeps running.</summary>
    public bool OomKilled { get; init; }

    /// <summary>A note on how the command ended (the OOM killer's choice); null when there is nothing to add.</summary>
    public string? Note { get; init; }

    internal static string Text(byte[]? bytes) => bytes is null ? "" : Encoding.UTF8.GetString(bytes);
}

/// <summary>workspace_run: the command's outcome plus the throwaway workspace's name, accelerator and phase timings.</summary>
public sealed record RunOutput(string Status, int ExitCode, int? Signal, string Stdout, string Stderr, bool StdoutTruncated, bool StderrTruncated,
    string? Error, string Workspace, string Accelerator, RunTimings Timings)
{
    /// <summary>Maps a run result; streamed output comes from <paramref name="stdout"/> and <paramref name="stderr"/>.</summary>
    public static RunOutput From(RunResult r, byte[]? stdout = null, byte[]? stderr = null) =>
        new(r.Status, r.ExitCode, r.Signal, ExecOutput.Text(r.Stdout ?? stdout), ExecOutput.Text(r.Stderr ?? stderr), r.StdoutTruncated, r.StderrTruncated,
            r.Error, r.WorkspaceId, r.Accelerator, r.Timings) { WarmFrom = r.WarmFrom, ColdReason = r.ColdReason };

    /// <summary>The template a warm start restored; null when the VM booted cold.</summary>
    public string? WarmFrom { get; init; }
    /// <summary>Why the VM booted cold; null for a warm start.</summary>
    public string? ColdReason { get; init; }
}

/// <summary>workspace_list.</summary>
public sealed record WorkspaceList(IReadOnlyList<WorkspaceStatus> Workspaces);

/// <summary>workspace_logs.</summary>
public sealed record LogTail(int TotalLines, IReadOnlyList<string> Lines);

/// <summary>One event with its position in the workspace's history.</summary>
public sealed record IndexedEvent(long Index, string Workspace, WorkspaceState State, WorkspaceState? Previous, string? Detail, DateTimeOffset ObservedAt)
{
    /// <summary>The event at <paramref name="index"/>.</summary>
    public static IndexedEvent From(long index, WorkspaceEvent e) => new(index, e.Workspace, e.State, e.Previous, e.Detail, e.ObservedAt);
}

/// <summary>workspace_events: one page of the history.</summary>
public sealed record EventPage(IReadOnlyList<IndexedEvent> Events, long NextIndex, long Total);

/// <summary>volume_list.</summary>
public sealed record VolumeList(IReadOnlyList<Microagent.Volumes.VolumeInfo> Volumes);

/// <summary>images_list.</summary>
public sealed record ImageList(IReadOnlyList<ImageInfo> Images);

/// <summary>The JSON of MCP results: source-generated metadata (AOT-safe) with <see cref="McpNaming"/> names.</summary>
internal static class McpJson
{
    /// <summary>Type information for every result type.</summary>
    public static McpJsonContext Context { get; } = new(new JsonSerializerOptions { PropertyNamingPolicy = new McpNaming() });
}

/// <summary>snake_case, with the unit MiB kept whole (<c>MemoryMiB</c> → <c>memory_mib</c>, as the tool arguments spell it).</summary>
internal sealed class McpNaming : JsonNamingPolicy
{
    public override string ConvertName(string name) => SnakeCaseLower.ConvertName(name.Replace("MiB", "Mib", StringComparison.Ordinal));
}

/// <summary>Source-generated (AOT-safe) JSON for every MCP result; use it through <see cref="McpJson.Context"/>.</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
[JsonSerializable(typeof(PingResult))]
[JsonSerializable(typeof(DescribeResult))]
[JsonSerializable(typeof(DoctorResult))]
[JsonSerializable(typeof(ExecOutput))]
[JsonSerializable(typeof(ConsoleSendOutput))]
[JsonSerializable(typeof(RunOutput))]
[JsonSerializable(typeof(WorkspaceStatus))]
[JsonSerializable(typeof(WorkspaceList))]
[JsonSerializable(typeof(WorkspaceStats))]
[JsonSerializable(typeof(WorkspaceStatsList))]
[JsonSerializable(typeof(LogTail))]
[JsonSerializable(typeof(EventPage))]
[JsonSerializable(typeof(EgressPage))]
[JsonSerializable(typeof(IReadOnlyList<IndexedEvent>))]
[JsonSerializable(typeof(WorkloadResult))]
[JsonSerializable(typeof(DeleteResult))]
[JsonSerializable(typeof(CopyResult))]
[JsonSerializable(typeof(Baseline))]
[JsonSerializable(typeof(ImageList))]
[JsonSerializable(typeof(Microagent.Images.ImageTagResult))]
[JsonSerializable(typeof(Microagent.Kernels.KernelCheck))]
[JsonSerializable(typeof(ProfileList))]
[JsonSerializable(typeof(VolumeList))]
[JsonSerializable(typeof(Microagent.Volumes.VolumeInfo))]
[JsonSerializable(typeof(Microagent.Volumes.VolumeDeleteResult))]
[JsonSerializable(typeof(SnapshotResult))]
[JsonSerializable(typeof(SnapshotList))]
[JsonSerializable(typeof(Microagent.Workspaces.Containment.QuarantineResult))]
[JsonSerializable(typeof(TemplateList))]
[JsonSerializable(typeof(Microagent.Workspaces.Templates.TemplateInfo))]
[JsonSerializable(typeof(Microagent.Workspaces.Templates.TemplatePruneResult))]
[JsonSerializable(typeof(JsonObject))]
[JsonSerializable(typeof(Microagent.Models.ModelRecord))]
[JsonSerializable(typeof(ModelList))]
[JsonSerializable(typeof(ModelRunnerList))]
[JsonSerializable(typeof(ModelDeleteResult))]
[JsonSerializable(typeof(Microagent.Models.ModelRunnerRecord))]
[JsonSerializable(typeof(Microagent.Models.ModelStopResult))]
internal sealed partial class McpJsonContext : JsonSerializerContext;

using System.Text.Json.Nodes;
using Microagent.Workspaces.Snapshots;

namespace Microagent.Mcp;

/// <summary>One snapshot as MCP tools report it.</summary>
public sealed record SnapshotResult(string? Workspace, string Tag, DateTimeOffset Created, long SizeBytes, string? ImageDigest, string? KernelRelease,
    string KernelSha256, string QemuVersion, string MachineType, int MemoryMiB, int Cpus, string AgentBuild)
{
    /// <summary>From the library's record.</summary>
    public static SnapshotResult From(SnapshotInfo s) => new(s.Manifest.Workspace, s.Manifest.Tag, s.Manifest.Created, s.SizeBytes, s.Manifest.ImageDigest,
        s.Manifest.KernelRelease, s.Manifest.KernelSha256, s.Manifest.QemuVersion, s.Manifest.MachineType, s.Manifest.MemoryMiB, s.Manifest.Cpus, s.Manifest.AgentVersion);
}

/// <summary>snapshot_list: a workspace's snapshots, oldest first.</summary>
public sealed record SnapshotList(IReadOnlyList<SnapshotResult> Snapshots);

/// <summary>Tools of the CLI's <c>snapshot</c> verbs (docs/ARCHITECTURE.md "Snapshots"): thin calls into the library.</summary>
public sealed partial class ToolCatalog
{
    private void AddSnapshotTools()
    {
        Add("snapshot_create", "Snapshot a workspace", new ToolHints(ReadOnly: false, Destructive: false, Idempotent: false, OpenWorld: false),
            "Capture a running or paused workspace's memory, devices and disk (a running one is paused, captured and continued; live vsock " +
            "connections are reset). An existing tag is replaced only once the new snapshot is complete. Restore with workspace_start from_snapshot, " +
            "fork with workspace_create from_snapshot.",
            Schema.Object(new JsonObject
            {
                ["name"] = Schema.String("Workspace name (running or paused)."),
                ["tag"] = Schema.String("Snapshot tag: 1-64 letters, digits, '.', '_' or '-' (default: a UTC timestamp)."),
            }, "name"), McpJson.Context.SnapshotResult,
            async call => SnapshotResult.From(await Workspaces.SnapshotCreateAsync(Name(call), call.String("tag"), call.Cancellation).ConfigureAwait(false)));

        Add("snapshot_list", "List a workspace's snapshots", ToolHints.Query,
            "A workspace's snapshots, oldest first: tag, created, size, source image, kernel and what a restore needs to match.",
            NameOnly(), McpJson.Context.SnapshotList,
            call => Task.FromResult(new SnapshotList(Workspaces.ListSnapshots(Name(call)).Select(SnapshotResult.From).ToList())));

        Add("snapshot_delete", "Delete a snapshot", new ToolHints(ReadOnly: false, Destructive: true, Idempotent: false, OpenWorld: false),
            "Delete one snapshot and the disk layers nothing needs any more; refused while a fork has yet to resume it.",
            Schema.Object(new JsonObject
            {
                ["name"] = Schema.String("Workspace name."),
                ["tag"] = Schema.String("Snapshot tag."),
            }, "name", "tag"), McpJson.Context.SnapshotResult,
            async call => SnapshotResult.From(await Workspaces.SnapshotDeleteAsync(Name(call), call.String("tag", required: true)!, call.Cancellation).ConfigureAwait(false)));
    }
}

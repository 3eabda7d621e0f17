using System.CommandLine;
using Microagent.Tools;
using Microagent.Workspaces;
using Microagent.Workspaces.Snapshots;

namespace Microagent.Cli.Commands;

/// <summary><c>microagent snapshot create|list|delete</c> (docs/ARCHITECTURE.md "Snapshots").</summary>
internal static class SnapshotCommand
{
    public static Command Create()
    {
        var cmd = new Command("snapshot", """
            Save and manage snapshots of a workspace: its memory, devices and disk at one instant.
            `microagent start NAME --from-snapshot TAG` restores one in place; `microagent create NEW --from-snapshot NAME:TAG` forks one.

            Examples:
              microagent snapshot create research --tag before-tests
              microagent snapshot list research --json
              microagent snapshot delete research before-tests
            """);
        cmd.Subcommands.Add(CreateVerb());
        cmd.Subcommands.Add(ListVerb());
        cmd.Subcommands.Add(DeleteVerb());
        return cmd;
    }

    private static Command CreateVerb()
    {
        var name = WorkspaceArgs.Name();
        var tag = new Option<string?>("--tag") { Description = "Its tag (default: a UTC timestamp yyyyMMdd-HHmmss-fff); an existing one is replaced once the new one is complete" };
        var cmd = new Command("create", """
            Capture a running or paused workspace: a running one is paused, captured and continued (live vsock
            connections are reset: exec, shell and mediation reconnect); a paused one stays paused. The disk's current
            layer is frozen read-only (no copy) and the memory is saved beside it.

            Examples:
              microagent snapshot create research
              microagent snapshot create research --tag before-tests --json
            """);
        cmd.Arguments.Add(name);
        cmd.Options.Add(tag);
        cmd.SetAction(async (r, ct) =>
        {
            var info = await new WorkspaceManager(GlobalOptions.Paths(r)).SnapshotCreateAsync(r.GetValue(name)!, r.GetValue(tag), ct);
            if (r.GetValue(GlobalOptions.Json)) Cli.WriteJson(Json(info), Cli.Json.SnapshotJson);
            else Console.WriteLine($"snapshot {info.Manifest.Workspace}:{info.Manifest.Tag} ({ByteSize.Format(info.SizeBytes)})");
            return 0;
        });
        return cmd;
    }

    private static Command ListVerb()
    {
        var name = WorkspaceArgs.Name();
        var cmd = new Command("list", "List a workspace's snapshots, oldest first: tag, created, size, source image, kernel.\n\nExamples:\n" +
            "  microagent snapshot list research\n  microagent snapshot list research --json");
        cmd.Arguments.Add(name);
        cmd.SetAction(r =>
        {
            var list = new WorkspaceManager(GlobalOptions.Paths(r)).ListSnapshots(r.GetValue(name)!);
            if (r.GetValue(GlobalOptions.Json)) { Cli.WriteJson(list.Select(Json).ToList(), Cli.Json.ListSnapshotJson); return 0; }
            if (list.Count == 0) { Console.WriteLine($"no snapshots; `microagent snapshot create {r.GetValue(name)}` takes one"); return 0; }
            Console.WriteLine($"{"TAG",-24} {"CREATED",-20} {"SIZE",9}  {"IMAGE",-19}  KERNEL");
            foreach (var s in list)
                Console.WriteLine($"{s.Manifest.Tag,-24} {s.Manifest.Created.UtcDateTime:yyyy-MM-dd HH:mm:ss}  {ByteSize.Format(s.SizeBytes),9}  " +
                    $"{(s.Manifest.ImageDigest is { Length: > 19 } d ? d[..19] : s.Manifest.ImageDigest),-19}  {s.Manifest.KernelRelease} ({s.Manifest.KernelSha256[..Math.Min(12, s.Manifest.KernelSha256.Length)]})");
            return 0;
        });
        return cmd;
    }

    private static Command DeleteVerb()
    {
        var name = WorkspaceArgs.Name();
        var tag = new Argument<string>("tag") { Description = "The snapshot's tag" };
        var cmd = new Command("delete", "Delete a snapshot and the disk layers nothing needs any more (refused while a fork has yet to resume it).\n\nExamples:\n" +
            "  microagent snapshot delete research before-tests");
        cmd.Arguments.Add(name);
        cmd.Arguments.Add(tag);
        cmd.SetAction(async (r, ct) =>
        {
            var info = await new WorkspaceManager(GlobalOptions.Paths(r)).SnapshotDeleteAsync(r.GetValue(name)!, r.GetValue(tag)!, ct);
            if (r.GetValue(GlobalOptions.Json)) Cli.WriteJson(Json(info), Cli.Json.SnapshotJson);
            else Console.WriteLine($"deleted snapshot {info.Manifest.Workspace}:{info.Manifest.Tag}");
            return 0;
        });
        return cmd;
    }

    /// <summary>The <c>--json</c> document of one snapshot.</summary>
    public static SnapshotJson Json(SnapshotInfo s) => new(s.Manifest.Workspace, s.Manifest.Tag, s.Manifest.Created, s.SizeBytes, s.Manifest.ImageDigest,
        s.Manifest.KernelRelease, s.Manifest.KernelSha256, s.Manifest.QemuVersion, s.Manifest.MachineType, s.Manifest.MemoryMiB, s.Manifest.Cpus, s.Manifest.AgentVersion);
}

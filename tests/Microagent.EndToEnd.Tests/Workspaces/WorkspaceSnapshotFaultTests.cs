using System.Diagnostics;
using System.Text.Json;

namespace Microagent.EndToEnd.Tests.Workspaces;

/// <summary>A capture that fails half-way (docs/ARCHITECTURE.md "Snapshots"): the previous snapshot of the tag is kept and the state is truthful.</summary>
public sealed class WorkspaceSnapshotFaultTests
{
    private static Task<CliResult> Ma(params string[] args) => MicroagentCli.RunAsync(args);

    private static JsonElement Json(CliResult r) => JsonDocument.Parse(r.Stdout).RootElement;

    [Fact]
    public async Task QEMU_killed_during_the_save_keeps_the_previous_snapshot_and_the_workspace_is_failed()
    {
        const string name = "snap-kill";
        string snapshots = Path.Combine(MicroagentCli.StateDir, "workspaces", name, "snapshots");
        try
        {
            await Ma("delete", name, "--force");
            Assert.Equal(0, (await Ma("create", name, "--memory", "1024")).ExitCode); // a larger memory file: the save lasts long enough to be cut
            Assert.Equal(0, (await Ma("start", name)).ExitCode);
            var first = await Ma("snapshot", "create", name, "--tag", "keep", "--json");
            Assert.True(first.ExitCode == 0, first.Stderr);
            var created = Json(first).GetProperty("created").GetString();
            int qemu = Json(await Ma("status", name, "--json")).GetProperty("pids").GetProperty("qemu").GetInt32();

            var second = MicroagentCli.RunAsync(["snapshot", "create", name, "--tag", "keep", "--json"]);
            // The save writes the memory file in the staging directory: kill QEMU once it has begun.
            await Poll.UntilAsync(() => Directory.EnumerateDirectories(snapshots, ".staging-keep-*")
                .Any(d => File.Exists(Path.Combine(d, "memory.state")) && new FileInfo(Path.Combine(d, "memory.state")).Length > 0),
                TimeSpan.FromSeconds(60), "the second capture to start writing its memory file");
            Process.GetProcessById(qemu).Kill();
            var failed = await second;
            Assert.NotEqual(0, failed.ExitCode);

            await Poll.UntilAsync(async () => Json(await Ma("status", name, "--json")).GetProperty("state").GetString() == "failed",
                TimeSpan.FromSeconds(30), "the workspace to be recorded failed");
            var list = Json(await Ma("snapshot", "list", name, "--json"));
            var kept = list.EnumerateArray().Single();
            Assert.Equal("keep", kept.GetProperty("tag").GetString());
            Assert.Equal(created, kept.GetProperty("created").GetString());
            Assert.Empty(Directory.EnumerateDirectories(snapshots, ".staging-*"));

            // The kept snapshot still restores.
            var restored = await Ma("start", name, "--from-snapshot", "keep", "--json");
            Assert.True(restored.ExitCode == 0, restored.Stderr);
            Assert.Equal("running", Json(restored).GetProperty("state").GetString());
        }
        finally
        {
            await Ma("delete", name, "--force");
        }
    }
}

using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Microagent.EndToEnd.Tests.Workspaces;

/// <summary>
/// A workspace booted once and snapshotted as <c>base</c> with a file on a tmpfs, a file on its disk and a background process
/// (docs/ARCHITECTURE.md "Snapshots"); shared by <see cref="WorkspaceSnapshotTests"/>.
/// </summary>
public sealed class SnapshottedWorkspace : IAsyncLifetime
{
    public const string Name = "snap-src";
    public const string Tag = "base";

    /// <summary>The pid of <c>sleep 1000</c>, started before the snapshot.</summary>
    public string SleeperPid { get; private set; } = "";

    /// <summary>The snapshot's <c>--json</c> document.</summary>
    public JsonElement Snapshot { get; private set; }

    public async Task InitializeAsync()
    {
        await MicroagentCli.RunAsync(["delete", Name, "--force"]);
        Check(await MicroagentCli.RunAsync(["create", Name]));
        Check(await MicroagentCli.RunAsync(["start", Name]));
        var setup = Check(await MicroagentCli.RunAsync(["exec", Name, "--", "sh", "-c",
            "echo in-memory > /dev/shm/before; echo on-disk > /root/before; sync; sleep 1000 >/dev/null 2>&1 & echo $!"]));
        SleeperPid = setup.Stdout.Trim();
        var snapshot = Check(await MicroagentCli.RunAsync(["snapshot", "create", Name, "--tag", Tag, "--json"]));
        Snapshot = JsonDocument.Parse(snapshot.Stdout).RootElement.Clone();
    }

    public static CliResult Check(CliResult r)
    {
        Assert.True(r.ExitCode == 0, $"exit {r.ExitCode}: {r.Stderr}");
        return r;
    }

    public async Task DisposeAsync()
    {
        foreach (string fork in new[] { "snap-fork1", "snap-fork2", "snap-skew" }) await MicroagentCli.RunAsync(["delete", fork, "--force"]);
        await MicroagentCli.RunAsync(["delete", Name, "--force"]);
    }
}

/// <summary>
/// Snapshots through the real binary, real QEMU (TCG) and the real guest: restore in place brings back memory, disk and processes
/// and sets the clock; forks run side by side with their own identity, randomness and disks; refusals name what is wrong.
/// </summary>
public sealed class WorkspaceSnapshotTests(SnapshottedWorkspace fx) : IClassFixture<SnapshottedWorkspace>
{
    private const string Src = SnapshottedWorkspace.Name;

    private static Task<CliResult> Ma(params string[] args) => MicroagentCli.RunAsync(args);

    private static JsonElement Json(CliResult r) => JsonDocument.Parse(r.Stdout).RootElement;

    private static CliResult Check(CliResult r) => SnapshottedWorkspace.Check(r);

    private static async Task<string> ExecAsync(string name, string script) =>
        Check(await Ma("exec", name, "--", "sh", "-c", script)).Stdout.Trim();

    [Fact]
    public async Task Snapshot_list_shows_the_snapshot_with_its_image_and_kernel()
    {
        Assert.Equal(SnapshottedWorkspace.Tag, fx.Snapshot.GetProperty("tag").GetString());
        var list = Json(Check(await Ma("snapshot", "list", Src, "--json")));
        var s = list.EnumerateArray().Single(e => e.GetProperty("tag").GetString() == SnapshottedWorkspace.Tag);
        Assert.StartsWith("sha256:", s.GetProperty("imageDigest").GetString());
        Assert.Equal(64, s.GetProperty("kernelSha256").GetString()!.Length);
        Assert.Equal("pc-i440fx-10.0", s.GetProperty("machineType").GetString());
        Assert.True(s.GetProperty("sizeBytes").GetInt64() > 0);
        Assert.Contains(SnapshottedWorkspace.Tag, Check(await Ma("snapshot", "list", Src)).Stdout);
    }

    [Fact]
    public async Task Restore_in_place_brings_back_memory_disk_and_processes_refuses_a_running_workspace_and_sets_the_clock()
    {
        await ExecAsync(Src, "echo in-memory > /dev/shm/after; echo on-disk > /root/after; sync");
        var running = await Ma("start", Src, "--from-snapshot", SnapshottedWorkspace.Tag, "--json");
        Assert.NotEqual(0, running.ExitCode);
        Assert.Equal("conflict", Json(running).GetProperty("error").GetProperty("kind").GetString());
        Assert.Contains("stop the workspace before restoring it in place", Json(running).GetProperty("error").GetProperty("message").GetString());

        // The saved guest clock is this much behind once it is restored: the host must set it.
        await Task.Delay(TimeSpan.FromSeconds(10));
        Check(await Ma("halt", Src));
        var restored = Json(Check(await Ma("start", Src, "--from-snapshot", SnapshottedWorkspace.Tag, "--json")));
        Assert.Equal("running", restored.GetProperty("state").GetString());
        Assert.Equal($"{Src}:{SnapshottedWorkspace.Tag}", restored.GetProperty("boot").GetProperty("restoredFrom").GetString());

        Assert.Equal("in-memory", await ExecAsync(Src, "cat /dev/shm/before"));
        Assert.Equal("absent", await ExecAsync(Src, "test -e /dev/shm/after && echo present || echo absent"));
        Assert.Equal("on-disk", await ExecAsync(Src, "cat /root/before"));
        Assert.Equal("absent", await ExecAsync(Src, "test -e /root/after && echo present || echo absent"));
        Assert.Equal("sleep", await ExecAsync(Src, $"cat /proc/{fx.SleeperPid}/comm"));

        var before = DateTimeOffset.UtcNow;
        long guest = long.Parse(await ExecAsync(Src, "date +%s"), CultureInfo.InvariantCulture);
        var after = DateTimeOffset.UtcNow;
        Assert.True(guest + 1 >= before.ToUnixTimeSeconds() - 2 && guest <= after.ToUnixTimeSeconds() + 2,
            $"guest clock {guest} is not within 2 s of the host's [{before.ToUnixTimeSeconds()}, {after.ToUnixTimeSeconds()}]");
    }

    [Fact]
    public async Task Two_forks_run_at_once_with_their_own_hostnames_random_bytes_and_disks_and_the_source_cannot_be_deleted_under_them()
    {
        string[] forks = ["snap-fork1", "snap-fork2"];
        foreach (string f in forks) Check(await Ma("create", f, "--from-snapshot", $"{Src}:{SnapshottedWorkspace.Tag}"));
        var starts = await Task.WhenAll(forks.Select(f => Ma("start", f, "--json")));
        foreach (var s in starts) Assert.Equal($"{Src}:{SnapshottedWorkspace.Tag}", Json(Check(s)).GetProperty("boot").GetProperty("restoredFrom").GetString());

        foreach (string f in forks)
        {
            Assert.Equal(f, await ExecAsync(f, "hostname"));
            Assert.Equal("in-memory", await ExecAsync(f, "cat /dev/shm/before"));
            Assert.Equal("on-disk", await ExecAsync(f, "cat /root/before"));
        }
        Assert.NotEqual(await ExecAsync(forks[0], "cat /etc/machine-id"), await ExecAsync(forks[1], "cat /etc/machine-id"));
        Assert.NotEqual(await ExecAsync(forks[0], "head -c 32 /dev/urandom | od -An -tx1"), await ExecAsync(forks[1], "head -c 32 /dev/urandom | od -An -tx1"));
        await ExecAsync(forks[0], "echo mine > /root/fork-file; sync");
        Assert.Equal("absent", await ExecAsync(forks[1], "test -e /root/fork-file && echo present || echo absent"));
        Assert.Equal("mine", await ExecAsync(forks[0], "cat /root/fork-file"));

        var delete = await Ma("delete", Src, "--force", "--json");
        Assert.NotEqual(0, delete.ExitCode);
        Assert.Equal("conflict", Json(delete).GetProperty("error").GetProperty("kind").GetString());
        Assert.Contains("snap-fork1", Json(delete).GetProperty("error").GetProperty("message").GetString());
        foreach (string f in forks) Check(await Ma("delete", f, "--force"));
    }

    [Fact]
    public async Task A_snapshot_whose_manifest_names_another_kernel_is_refused_naming_both_hashes()
    {
        string snapshots = Path.Combine(MicroagentCli.StateDir, "workspaces", Src, "snapshots");
        string copy = Path.Combine(snapshots, "skewed");
        Directory.CreateDirectory(copy);
        foreach (string f in Directory.GetFiles(Path.Combine(snapshots, SnapshottedWorkspace.Tag)))
            if (Path.GetFileName(f) == "manifest.json")
            {
                var m = JsonNode.Parse(File.ReadAllText(f))!.AsObject();
                m["tag"] = "skewed";
                m["kernelSha256"] = new string('0', 64);
                File.WriteAllText(Path.Combine(copy, "manifest.json"), m.ToJsonString());
            }
            else File.CreateSymbolicLink(Path.Combine(copy, Path.GetFileName(f)), f);
        try
        {
            Check(await Ma("create", "snap-skew", "--from-snapshot", $"{Src}:skewed"));
            var start = await Ma("start", "snap-skew", "--json");
            Assert.NotEqual(0, start.ExitCode);
            var error = Json(start).GetProperty("error");
            Assert.Equal("conflict", error.GetProperty("kind").GetString());
            string message = error.GetProperty("message").GetString()!;
            Assert.Contains("kernel sha256 " + new string('0', 64), message);
            Assert.Contains(fx.Snapshot.GetProperty("kernelSha256").GetString()!, message);
        }
        finally
        {
            await Ma("delete", "snap-skew", "--force");
            Directory.Delete(copy, true);
        }
    }
}

using System.Diagnostics;
using System.Text.Json;


namespace Microagent.EndToEnd.Tests.Volumes;

/// <summary>
/// Data disks through the real CLI, QEMU and guest agent: ext4 images ro and rw, tar and tar.gz bundles, named volumes, and the
/// refusals. One workspace carries every kind of disk, so the class boots three VMs in all.
/// </summary>
public sealed class DataDiskTests : IDisposable
{
    private readonly string _host = Directory.CreateTempSubdirectory("ma-disks-").FullName;

    public void Dispose()
    {
        foreach (string ws in new[] { "disks-a", "disks-b" })
            MicroagentCli.RunAsync(["delete", ws, "--force"]).GetAwaiter().GetResult();
        MicroagentCli.RunAsync(["volume", "delete", "disks-shared", "--force"]).GetAwaiter().GetResult();
        Directory.Delete(_host, true);
    }

    private static Task<CliResult> Ma(params string[] args) => MicroagentCli.RunAsync(args);

    private string HostFile(string name) => Path.Combine(_host, name);

    /// <summary>A tree with one file, as an ext4 image (mke2fs -d), a tar and a tar.gz.</summary>
    private void MakeSources()
    {
        string tree = HostFile("tree");
        Directory.CreateDirectory(Path.Combine(tree, "sub"));
        File.WriteAllText(Path.Combine(tree, "hello.txt"), "hello from the host\n");
        File.WriteAllText(Path.Combine(tree, "sub", "deep.txt"), "deep\n");
        Images.Tools.Run("mke2fs", "-q", "-t", "ext4", "-d", tree, "-F", HostFile("ro.ext4"), "16M");
        Images.Tools.Run("mke2fs", "-q", "-t", "ext4", "-F", HostFile("rw.ext4"), "16M");
        Images.Tools.Run("tar", "-cf", HostFile("bundle.tar"), "-C", tree, ".");
        Images.Tools.Run("tar", "-czf", HostFile("bundle.tar.gz"), "-C", tree, ".");
    }

    [Fact]
    public async Task Every_kind_of_disk_is_mounted_written_kept_and_locked()
    {
        MakeSources();
        var vol = await Ma("volume", "create", "disks-shared", "--size", "32", "--json");
        Assert.True(vol.ExitCode == 0, vol.Stdout + vol.Stderr);

        var create = await Ma("create", "disks-a", "-v", $"{HostFile("ro.ext4")}:/ro:ro", "--disk", $"scratch={HostFile("rw.ext4")}:/rw:rw",
            "-v", $"{HostFile("bundle.tar")}:/tar", "--bundle", $"gz={HostFile("bundle.tar.gz")}:/gz:rw", "-v", "disks-shared:/shared", "--json");
        Assert.True(create.ExitCode == 0, create.Stdout + create.Stderr);
        using (var doc = JsonDocument.Parse(create.Stdout))
        {
            var disks = doc.RootElement.GetProperty("config").GetProperty("disks");
            Assert.Equal(["image", "bundle", "volume", "image", "bundle"], disks.EnumerateArray().Select(d => d.GetProperty("kind").GetString()!));
            Assert.Equal("qcow2", disks[4].GetProperty("format").GetString()); // -v first, then --disk, then --bundle; a rw bundle gets its own overlay
        }
        var start = await Ma("start", "disks-a");
        Assert.True(start.ExitCode == 0, start.Stderr);

        // Contents at DST; ro is read-only in the guest; writes land.
        var look = await Ma("exec", "disks-a", "--", "sh", "-c",
            "cat /ro/hello.txt /tar/hello.txt /gz/sub/deep.txt; touch /ro/x 2>/dev/null && echo ro-writable; touch /tar/x 2>/dev/null && echo tar-writable; " +
            "echo kept > /rw/new.txt; echo layer > /gz/added.txt && cat /gz/added.txt; echo shared-note > /shared/note; sync; " +
            "grep -c ' /ro ext4 ro' /proc/mounts");
        Assert.True(look.ExitCode == 0, look.Stdout + look.Stderr);
        Assert.Equal("hello from the host\nhello from the host\ndeep\nlayer\n1\n", look.Stdout);

        // The same rw volume in a second running workspace: refused before anything boots, naming the holder.
        var b = await Ma("create", "disks-b", "-v", "disks-shared:/shared");
        Assert.True(b.ExitCode == 0, b.Stderr);
        var clash = await Ma("start", "disks-b", "--json");
        Assert.Equal(1, clash.ExitCode);
        using (var err = JsonDocument.Parse(clash.Stdout))
        {
            Assert.Equal("conflict", err.RootElement.GetProperty("error").GetProperty("kind").GetString());
            Assert.Contains("disks-a", err.RootElement.GetProperty("error").GetProperty("message").GetString());
        }
        var clashImage = await Ma("run", "-v", $"{HostFile("rw.ext4")}:/rw", "--", "true");
        Assert.Equal(1, clashImage.ExitCode);
        Assert.Contains("attached to another running workspace", clashImage.Stderr);
        var busy = await Ma("volume", "delete", "disks-shared", "--force");
        Assert.Equal(1, busy.ExitCode);
        Assert.Contains("running workspace", busy.Stderr);
        var inspect = await Ma("volume", "inspect", "disks-shared", "--json");
        using (var doc = JsonDocument.Parse(inspect.Stdout))
        {
            Assert.True(doc.RootElement.GetProperty("inUse").GetBoolean());
            Assert.Equal(["disks-a", "disks-b"], doc.RootElement.GetProperty("usedBy").EnumerateArray().Select(e => e.GetString()!));
        }

        // After halt the data is in the image file itself; a halted workspace releases its disks.
        Assert.Equal(0, (await Ma("halt", "disks-a")).ExitCode);
        Assert.Equal("kept\n", Images.Tools.Run("debugfs", "-R", "cat /new.txt", HostFile("rw.ext4")));
        Assert.Contains("clean", Images.Tools.Run("dumpe2fs", "-h", HostFile("rw.ext4")));

        // The named volume outlives its workspace and is seen by the next one.
        Assert.Equal(0, (await Ma("delete", "disks-a")).ExitCode);
        Assert.Contains("disks-shared", (await Ma("volume", "list")).Stdout);
        var second = await Ma("start", "disks-b");
        Assert.True(second.ExitCode == 0, second.Stderr);
        var seen = await Ma("exec", "disks-b", "--", "cat", "/shared/note");
        Assert.Equal("shared-note\n", seen.Stdout);
        Assert.Equal(0, (await Ma("delete", "disks-b", "--force")).ExitCode);

        // A one-shot run with the volume and a bundle; the volume is then free to delete.
        var run = await Ma("run", "-v", "disks-shared:/shared:ro", "-v", $"{HostFile("bundle.tar.gz")}:/src", "--", "sh", "-c", "cat /shared/note /src/hello.txt");
        Assert.True(run.ExitCode == 0, run.Stderr);
        Assert.Equal("shared-note\nhello from the host\n", run.Stdout);
        var gone = await Ma("volume", "delete", "disks-shared", "--json");
        Assert.True(gone.ExitCode == 0, gone.Stdout + gone.Stderr);
        Assert.DoesNotContain("disks-shared", (await Ma("volume", "list")).Stdout);
    }

    [Fact]
    public async Task Host_directories_and_bad_specs_are_usage_errors_and_dry_run_shows_the_disks()
    {
        MakeSources();
        var dir = await Ma("run", "-v", $"{HostFile("tree")}:/data", "--", "true");
        Assert.Equal(2, dir.ExitCode);
        Assert.Contains("host directories are not shared into a workspace", dir.Stderr);
        Assert.Contains("tar -czf", dir.Stderr);
        var dirCreate = await Ma("create", "disks-x", "--disk", $"d={HostFile("tree")}:/data", "--json");
        Assert.Equal(2, dirCreate.ExitCode);
        Assert.Contains("\"kind\": \"invalid\"", dirCreate.Stdout);

        foreach (var (spec, reason) in new[] { ("disks-shared", "no guest mount point"), ("disks-shared:data", "is not absolute"), ("disks-shared:/data:rx", "unknown mode") })
        {
            var bad = await Ma("create", "disks-x", "-v", spec);
            Assert.True(bad.ExitCode == 2, $"{spec}: {bad.ExitCode} {bad.Stderr}");
            Assert.Contains(reason, bad.Stderr);
        }
        Assert.False(Directory.Exists(Path.Combine(MicroagentCli.StateDir, "workspaces", "disks-x")));
        var missing = await Ma("create", "disks-x", "-v", "no-such-volume:/data");
        Assert.Equal(1, missing.ExitCode);
        Assert.Contains("volume create no-such-volume", missing.Stderr);
        Assert.False(Directory.Exists(Path.Combine(MicroagentCli.StateDir, "workspaces", "disks-x")));
        var notExt4 = await Ma("create", "disks-x", "-v", $"{HostFile("bundle.tar")}x:/data");
        Assert.NotEqual(0, notExt4.ExitCode);

        var plan = await Ma("run", "--dry-run", "--json", "-v", $"{HostFile("ro.ext4")}:/ro:ro", "-v", $"{HostFile("bundle.tar")}:/src", "--", "true");
        Assert.True(plan.ExitCode == 0, plan.Stdout + plan.Stderr);
        using var doc = JsonDocument.Parse(plan.Stdout);
        var disks = doc.RootElement.GetProperty("disks").EnumerateArray().ToList();
        Assert.Equal(["vda", "vdb", "vdc"], disks.Select(d => d.GetProperty("device").GetString()!));
        Assert.Equal("/ro", disks[1].GetProperty("target").GetString());
        Assert.Equal("ro", disks[1].GetProperty("mode").GetString());
        Assert.Equal("bundle", disks[2].GetProperty("kind").GetString());
        var text = await Ma("run", "--dry-run", "-v", $"{HostFile("ro.ext4")}:/ro:ro", "--", "true");
        Assert.Contains("vdb ro", text.Stdout);
        Assert.Contains("/ro", text.Stdout);
    }
}

using Microagent.Errors;
using Microagent.Images;
using Microagent.Tests.Images;
using Microagent.Workspaces;

namespace Microagent.Tests.Workspaces;

/// <summary>Dry-run plans, <c>ttl</c> and <c>shell</c> in spec files, and the halt/kill reason rule.</summary>
public sealed class WorkspacePlanTests : IDisposable
{
    private readonly TempDir _tmp = new();
    private readonly StatePaths _paths;

    public WorkspacePlanTests() => _paths = new StatePaths(Path.Combine(_tmp.Path, "state"));

    public void Dispose() => _tmp.Dispose();

    [Fact]
    public async Task A_plan_resolves_and_checks_without_changing_anything()
    {
        string layout = Path.Combine(_tmp.Path, "img");
        TestImages.Layout(layout, [TestImages.Tar(w => w.File("a", "a"))]);
        var manager = new WorkspaceManager(_paths);
        var spec = new WorkspaceSpec { Name = "planned", Image = "oci:" + layout, Profile = "small", TtlSeconds = 300, Vsock = [VsockMapping.Parse("5000=8080")] };

        var before = manager.PlanCreate(spec);
        Assert.Equal(("create", "planned", "small", 512, 2, 1024, 300), (before.Operation, before.Name, before.Profile, before.MemoryMiB, before.Cpus, before.DiskMiB, before.TtlSeconds));
        Assert.Null(before.ImageDigest);
        Assert.Contains(before.Notes, n => n.Contains("not cached", StringComparison.Ordinal));
        Assert.Equal("vda", Assert.Single(before.Disks).Device);
        Assert.Equal("5000=127.0.0.1:8080", Assert.Single(before.Vsock).ToString());
        Assert.StartsWith("user", before.Network, StringComparison.Ordinal);
        Assert.False(Directory.Exists(Path.Combine(_paths.Workspaces, "planned")));
        Assert.False(Directory.Exists(Path.Combine(_paths.Images, "baselines")));

        var b = await new ImageStore(_paths).EnsureBaselineAsync("oci:" + layout);
        var after = manager.PlanCreate(spec);
        Assert.Equal(b.ManifestDigest, after.ImageDigest);
        Assert.Equal(b.Path, after.Disks[0].Backing);

        var run = manager.PlanRun(new RunOptions { Image = "oci:" + layout, Command = ["uname", "-a"], MemoryMiB = 512 });
        Assert.Equal(("run", (string?)null, 512), (run.Operation, run.Name, run.MemoryMiB));
        Assert.Equal(new[] { "uname", "-a" }, run.Command);

        var invalid = Assert.ThrowsAny<MicroagentException>(() => manager.PlanCreate(spec with { MemoryMiB = 1 }));
        Assert.Equal(("memory_mib", ErrorKind.Invalid), (invalid.Field, invalid.Kind));
        Assert.Equal("shell", Assert.Throws<WorkspaceSpecException>(() => manager.PlanCreate(spec with { Shell = "bash" })).Field);
    }

    [Fact]
    public void Spec_files_take_ttl_as_a_duration_and_a_shell()
    {
        var spec = WorkspaceSpecFile.Parse("ttl: 30m\nshell: /bin/bash\n");
        Assert.Equal((1800, "/bin/bash"), (spec.TtlSeconds, spec.Shell));
        Assert.Equal(60, WorkspaceSpecFile.Parse("ttl: 60").TtlSeconds);
        var e = Assert.Throws<WorkspaceSpecException>(() => WorkspaceSpecFile.Parse("ttl: soon"));
        Assert.Contains("not a duration", e.Message);
        Assert.Equal("/bin/zsh", new WorkspaceSpec { Shell = "/bin/sh" }.With(new WorkspaceSpec { Shell = "/bin/zsh" }).Shell);
    }

    [Fact]
    public void A_reason_is_one_short_line()
    {
        WorkspaceValidator.Reason(null);
        WorkspaceValidator.Reason("end of the experiment");
        Assert.Equal("reason", Assert.Throws<WorkspaceSpecException>(() => WorkspaceValidator.Reason("two\nlines")).Field);
        Assert.Throws<WorkspaceSpecException>(() => WorkspaceValidator.Reason(new string('x', 501)));
    }
}

using Microagent.Errors;
using Microagent.Workspaces;

namespace Microagent.Tests.Workspaces;

public sealed class WorkspaceLimitsTests : IDisposable
{
    private readonly Manager.TempState _state = new();

    public void Dispose() => _state.Dispose();

    [Fact]
    public void Limits_have_the_documented_fields_and_ranges()
    {
        Assert.Equal(("memory_mib", 128L, 65536L), (WorkspaceLimits.MemoryMiB.Field, WorkspaceLimits.MemoryMiB.Min, WorkspaceLimits.MemoryMiB.Max));
        Assert.Equal(("cpus", 1L, 64L), (WorkspaceLimits.Cpus.Field, WorkspaceLimits.Cpus.Min, WorkspaceLimits.Cpus.Max));
        Assert.Equal(("size_mib", 64L, 1048576L), (WorkspaceLimits.SizeMiB.Field, WorkspaceLimits.SizeMiB.Min, WorkspaceLimits.SizeMiB.Max));
        Assert.Equal(("ttl_seconds", 0L), (WorkspaceLimits.TtlSeconds.Field, WorkspaceLimits.TtlSeconds.Min));
        Assert.False(WorkspaceLimits.TtlSeconds.Bounded);
        Assert.Equal(4 * 1024 * 1024, WorkspaceLimits.SingleModeOutputCap);
        Assert.Equal(Runner.SingleModeOutputCap, WorkspaceLimits.SingleModeOutputCap);
        Assert.All(WorkspaceLimits.All, l => Assert.False(string.IsNullOrWhiteSpace(l.Description)));
        Assert.Equal(WorkspaceLimits.All.Count, WorkspaceLimits.All.Select(l => l.Field).Distinct().Count());
    }

    [Theory]
    [InlineData(127)]
    [InlineData(65537)]
    public void Out_of_range_names_the_field_and_range_and_no_option(long memory)
    {
        var e = Assert.Throws<WorkspaceSpecException>(() => WorkspaceLimits.MemoryMiB.Check(memory));
        Assert.Equal($"memory_mib {memory} is out of range (128..65536)", e.Message);
        Assert.Equal("use 128..65536 MiB", e.Remediation);
        Assert.Equal("memory_mib", e.Field);
        Assert.Equal(ErrorKind.Invalid, e.Kind);
        WorkspaceLimits.MemoryMiB.Check(128);
        WorkspaceLimits.MemoryMiB.Check(65536);
    }

    [Fact]
    public async Task Create_and_run_reject_the_same_input_with_the_same_error()
    {
        var manager = new WorkspaceManager(_state.Paths);
        var create = await Assert.ThrowsAsync<WorkspaceSpecException>(() => manager.CreateAsync(new WorkspaceSpec { Name = "w", MemoryMiB = 100 }));
        var run = await Assert.ThrowsAsync<WorkspaceSpecException>(() => manager.RunAsync(new RunOptions { MemoryMiB = 100 }));
        Assert.Equal(create.Message, run.Message);
        Assert.Equal(create.Field, run.Field);
        Assert.Equal("memory_mib 100 is out of range (128..65536)", run.Message);
        Assert.False(Directory.Exists(_state.Paths.Workspaces) && Directory.EnumerateDirectories(_state.Paths.Workspaces).Any());
    }

    [Theory]
    [InlineData("cpus", 0, 256, 512, 0)]
    [InlineData("size_mib", 1, 256, 32, 0)]
    [InlineData("ttl_seconds", 1, 256, 512, -1)]
    public async Task Create_names_each_field(string field, int cpus, int memory, int size, int ttl)
    {
        var e = await Assert.ThrowsAsync<WorkspaceSpecException>(() => new WorkspaceManager(_state.Paths).CreateAsync(
            new WorkspaceSpec { Name = "w", Cpus = cpus, MemoryMiB = memory, SizeMiB = size, TtlSeconds = ttl }));
        Assert.Equal(field, e.Field);
        Assert.StartsWith(field + " ", e.Message);
        Assert.DoesNotContain("--", e.Message + e.Remediation);
    }

    [Fact]
    public async Task Exec_checks_its_command_env_and_timeout_before_looking_at_the_workspace()
    {
        var m = new WorkspaceManager(_state.Paths);
        Assert.Equal("command", (await Assert.ThrowsAsync<WorkspaceSpecException>(() => m.ExecAsync("w", new ExecOptions { Command = [] }))).Field);
        Assert.Equal("env", (await Assert.ThrowsAsync<WorkspaceSpecException>(() => m.ExecAsync("w", new ExecOptions { Command = ["true"], Env = ["NOEQUALS"] }))).Field);
        var timeout = await Assert.ThrowsAsync<WorkspaceSpecException>(() => m.ExecAsync("w", new ExecOptions { Command = ["true"], Timeout = TimeSpan.Zero }));
        Assert.Equal("timeout_ms", timeout.Field);
        Assert.Equal("timeout_ms 0 is out of range (at least 1)", timeout.Message);
        Assert.Equal("use 1 or more milliseconds", timeout.Remediation);
        Assert.Equal("max_output_bytes", (await Assert.ThrowsAsync<WorkspaceSpecException>(() => m.ExecAsync("w", new ExecOptions { Command = ["true"], MaxOutputBytes = -1 }))).Field);
    }

    [Fact]
    public void Vsock_and_mediation_errors_name_their_field()
    {
        Assert.Equal("vsock", Assert.Throws<WorkspaceSpecException>(() => VsockMapping.Parse("nonsense")).Field);
        Assert.Equal("profile", Assert.Throws<WorkspaceSpecException>(() => WorkspaceProfile.Parse("huge")).Field);
    }
}

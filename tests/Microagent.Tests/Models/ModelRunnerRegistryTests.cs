using Microagent.Errors;
using Microagent.Models;
using Microagent.TestSupport;
using Microagent.Workspaces;

namespace Microagent.Tests.Models;

/// <summary>The runner registry with real runner processes: a tiny node HTTP server as the custom backend.</summary>
public sealed class ModelRunnerRegistryTests : IAsyncLifetime
{
    private const string Server = "require('http').createServer((q, s) => s.end(q.url === '/health' ? 'ok' : 'model')).listen(+process.argv[1], process.argv[2])";
    private readonly string _dir = Directory.CreateTempSubdirectory("ma-runners-").FullName;
    private readonly StatePaths _paths;
    private ModelRecord _model = null!;

    public ModelRunnerRegistryTests() => _paths = new StatePaths(_dir);

    public async Task InitializeAsync()
    {
        string file = Path.Combine(_dir, "tiny.gguf");
        TinyGguf.Write(file);
        _model = await new ModelStore(_paths).PullAsync(file);
    }

    public async Task DisposeAsync()
    {
        foreach (var r in await new ModelRunnerRegistry(_paths).ListAsync()) ProcessTable.Kill(r.Pid);
        Directory.Delete(_dir, true);
    }

    private static ModelRunnerSpec Node(string? name = null) => new()
    {
        Backend = ModelRunnerBackend.Custom, Command = "node", Name = name, Args = ["-e", Server, "{port}", "{host}"],
    };

    [Fact]
    public async Task Holders_share_one_runner_which_stops_when_the_last_releases()
    {
        var registry = new ModelRunnerRegistry(_paths);
        var a = await registry.EnsureAsync(_model, Node(), "ws-a");
        var b = await registry.EnsureAsync(_model, Node(), "ws-b");
        Assert.Equal(a.Id, b.Id);
        Assert.Equal(a.Pid, b.Pid);
        Assert.Equal(["ws-a", "ws-b"], b.Holders);
        using (var http = new HttpClient()) Assert.Equal("model", await http.GetStringAsync($"{a.Url}/v1/models"));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(a.LogPath));

        Assert.Equal([a.Id], await registry.ReleaseAsync("ws-a"));
        Assert.True(ProcessTable.IsAlive(a.Pid, a.PidStartTime));
        Assert.Equal(["ws-b"], registry.Resolve(a.Id)!.Holders);
        await registry.ReleaseAsync("ws-b");
        Assert.False(ProcessTable.IsAlive(a.Pid, a.PidStartTime));
        Assert.Null(registry.Resolve(a.Id));
        Assert.Empty(await registry.ListAsync());
    }

    [Fact]
    public async Task Another_config_is_another_runner_and_a_holder_moves_to_it()
    {
        var registry = new ModelRunnerRegistry(_paths);
        var first = await registry.EnsureAsync(_model, Node(), "ws");
        var second = await registry.EnsureAsync(_model, Node("other"), "ws");
        Assert.NotEqual(first.Id, second.Id);
        Assert.False(ProcessTable.IsAlive(first.Pid, first.PidStartTime)); // its only holder moved away
        await registry.ReleaseAsync("ws");
    }

    [Fact]
    public async Task A_dead_runner_is_dropped_from_the_list_and_restarted_when_ensured()
    {
        var registry = new ModelRunnerRegistry(_paths);
        var a = await registry.EnsureAsync(_model, Node(), "ws");
        ProcessTable.Kill(a.Pid);
        await ProcessTable.WaitForExitAsync(a.Pid, a.PidStartTime, TimeSpan.FromSeconds(10), default);
        Assert.Null(registry.Resolve(a.Id));
        var again = await registry.EnsureAsync(_model, Node(), "ws");
        Assert.Equal(a.Id, again.Id);
        Assert.NotEqual(a.Pid, again.Pid);
        ProcessTable.Kill(again.Pid);
        await ProcessTable.WaitForExitAsync(again.Pid, again.PidStartTime, TimeSpan.FromSeconds(10), default);
        Assert.Empty(await registry.ListAsync());
        Assert.False(File.Exists(Path.Combine(_dir, "models", "runners", a.Id + ".json")));
    }

    [Fact]
    public async Task Serve_pins_a_runner_and_stop_names_its_holders()
    {
        var registry = new ModelRunnerRegistry(_paths);
        var pinned = await registry.ServeAsync(_model.Sha256, Node());
        Assert.True(pinned.Pinned);
        await registry.EnsureAsync(_model, Node(), "ws");
        await registry.ReleaseAsync("ws");
        Assert.NotNull(registry.Resolve(pinned.Id)); // pinned: kept without holders
        var dedicated = await registry.ServeAsync(_model.Sha256, Node(), dedicated: true);
        Assert.NotEqual(pinned.Id, dedicated.Id);
        await registry.EnsureAsync(_model, Node(), "ws2");
        var stopped = await registry.StopAsync(_model.Ref);
        Assert.Equal(2, stopped.Runners.Count);
        Assert.Equal(["ws2"], stopped.Workspaces);
        Assert.Empty(await registry.ListAsync());
    }

    [Fact]
    public async Task A_runner_that_dies_before_ready_fails_with_its_log_tail()
    {
        var spec = new ModelRunnerSpec { Backend = ModelRunnerBackend.Custom, Command = "node", Args = ["-e", "console.error('boom: cannot load'); process.exit(3)"] };
        var e = await Assert.ThrowsAsync<MicroagentException>(() => new ModelRunnerRegistry(_paths).EnsureAsync(_model, spec, "ws"));
        Assert.Contains("boom: cannot load", e.Message);
        Assert.Empty(await new ModelRunnerRegistry(_paths).ListAsync());
    }
}

using System.Net.Sockets;
using System.Text;
using Microagent.Agent;
using Microagent.Guest.Exec;
using Microagent.Guest.Server;
using Microagent.Protocol;

namespace Microagent.Tests.Agent;

/// <summary>The host's agent client against the real agent server (in process, over a unix socket).</summary>
public sealed class AgentClientTests : IAsyncLifetime
{
    private readonly string _path = Path.Combine(Path.GetTempPath(), $"agent-client-{Guid.NewGuid():N}.sock");
    private readonly CancellationTokenSource _stop = new();
    private int _shutdowns;
    private Task? _serve;
    private AgentClient _client = null!;

    public Task InitializeAsync()
    {
        var server = new AgentServer(new ExecEngine(new PerChildWaiter()), () => Interlocked.Increment(ref _shutdowns));
        _serve = Listeners.ServeUnixAsync(_path, server, _stop.Token);
        _client = new AgentClient(async ct =>
        {
            var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            for (int i = 0; ; i++)
            {
                try { await s.ConnectAsync(new UnixDomainSocketEndPoint(_path), ct); return new NetworkStream(s, ownsSocket: true); }
                catch (SocketException) when (i < 200) { await Task.Delay(20, ct); }
            }
        });
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        await _stop.CancelAsync();
        await _serve!;
        File.Delete(_path);
    }

    [Fact]
    public async Task Pings() => await _client.PingAsync();

    [Fact]
    public async Task Single_mode_returns_captured_output()
    {
        var r = await _client.ExecAsync(new ExecRequest { Argv = ["sh", "-c", "echo out; echo err >&2; exit 7"] });
        Assert.Equal(ExecStatuses.Exited, r.Status);
        Assert.Equal(7, r.ExitCode);
        Assert.Equal("out\n", Encoding.UTF8.GetString(r.Stdout!));
        Assert.Equal("err\n", Encoding.UTF8.GetString(r.Stderr!));
    }

    [Fact]
    public async Task Stream_mode_writes_to_sinks_and_pumps_stdin()
    {
        var input = new byte[300_000];
        Random.Shared.NextBytes(input);
        using var stdout = new MemoryStream();
        using var stderr = new MemoryStream();
        var r = await _client.ExecAsync(new ExecRequest { Argv = ["sh", "-c", "cat; echo done >&2"], Mode = ExecModes.Stream },
            new MemoryStream(input), stdout, stderr);
        Assert.Equal(0, r.ExitCode);
        Assert.Equal(input, stdout.ToArray());
        Assert.Equal("done\n", Encoding.UTF8.GetString(stderr.ToArray()));
    }

    [Fact]
    public async Task Shutdown_is_acknowledged()
    {
        await _client.ShutdownAsync();
        Assert.Equal(1, _shutdowns);
    }

    [Fact]
    public async Task Refused_requests_become_typed_errors()
    {
        var e = await Assert.ThrowsAsync<Microagent.Errors.MicroagentException>(() => _client.ExecAsync(new ExecRequest { Argv = [] }));
        Assert.Contains("refused", e.Message);
    }

    [Theory]
    [InlineData(ExecModes.Single)]
    [InlineData(ExecModes.Stream)]
    public async Task Cancelling_an_exec_kills_its_process_group(string mode)
    {
        string pidFile = Path.Combine(Path.GetTempPath(), $"agent-cancel-{Guid.NewGuid():N}.pid");
        using var cts = new CancellationTokenSource();
        // A silent command: nothing but the closed connection tells the agent that the host is gone.
        var exec = _client.ExecAsync(new ExecRequest { Argv = ["sh", "-c", $"sleep 600 & echo $! > {pidFile}.tmp && mv {pidFile}.tmp {pidFile}; wait"], Mode = mode },
            stdout: mode == ExecModes.Stream ? Stream.Null : null, stderr: mode == ExecModes.Stream ? Stream.Null : null, ct: cts.Token);
        int sleepPid = await WaitForAsync(() => File.Exists(pidFile) ? int.Parse(File.ReadAllText(pidFile).Trim()) : (int?)null);
        File.Delete(pidFile);
        Assert.True(IsLive(sleepPid));

        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => exec).WaitAsync(TimeSpan.FromSeconds(5));
        Assert.True(await WaitForAsync(() => IsLive(sleepPid) ? null : (bool?)true), $"sleep {sleepPid} outlived its cancelled exec");
    }

    /// <summary>Polls <paramref name="probe"/> until it yields a value (10 s at most).</summary>
    private static async Task<T> WaitForAsync<T>(Func<T?> probe) where T : struct
    {
        var sw = System.Diagnostics.Stopwatch.StartNew();
        while (true)
        {
            if (probe() is { } v) return v;
            Assert.True(sw.Elapsed < TimeSpan.FromSeconds(10), "condition not reached within 10 s");
            await Task.Delay(20);
        }
    }

    /// <summary>The process exists and is not a zombie (a killed orphan may wait for a reaper).</summary>
    private static bool IsLive(int pid)
    {
        try
        {
            string stat = File.ReadAllText($"/proc/{pid}/stat");
            return stat[stat.LastIndexOf(')') + 2] != 'Z';
        }
        catch (IOException) { return false; }
    }
}

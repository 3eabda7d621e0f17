using System.Net.Sockets;
using System.Text;
using Microagent.Agent;
using Microagent.Errors;
using Microagent.Guest.Exec;
using Microagent.Guest.Server;
using Microagent.Protocol;

namespace Microagent.Tests.Agent;

/// <summary>The host's agent client against the real agent server (in process, over a unix socket).</summary>
public sealed class AgentClientTests : IAsyncLifetime
{
    private readonly string _path = Path.Combine(Path.GetTempPath(), $"agent-client-{Guid.NewGuid():N}.sock");
    private readonly CancellationTokenSource _stop = new();
    private readonly TaskCompletionSource _shutdownRan = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _shutdowns;
    private Task? _serve;
    private AgentClient _client = null!;

    public Task InitializeAsync()
    {
        var server = new AgentServer(new ExecEngine(new PerChildWaiter()), () =>
        {
            Interlocked.Increment(ref _shutdowns);
            _shutdownRan.TrySetResult();
        });
        // ServeUnixAsync binds and listens before its first await: the socket accepts connections once it returns.
        _serve = Listeners.ServeUnixAsync(_path, server, _stop.Token);
        _client = new AgentClient(ct => ConnectAsync(_path, ct));
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        await _stop.CancelAsync();
        await _serve!;
        File.Delete(_path);
    }

    private static async Task<Stream> ConnectAsync(string path, CancellationToken ct)
    {
        var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await s.ConnectAsync(new UnixDomainSocketEndPoint(path), ct);
        return new NetworkStream(s, ownsSocket: true);
    }

    /// <summary>A client whose peer reads one request (returned) and answers <paramref name="answer"/>, or hangs up when null.</summary>
    private static (AgentClient Client, Task<Request?> Received) Peer(Response? answer)
    {
        string path = Path.Combine(Path.GetTempPath(), $"agent-peer-{Guid.NewGuid():N}.sock");
        var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(path));
        listener.Listen(1);
        async Task<Request?> ServeOnceAsync()
        {
            try
            {
                await using var s = new NetworkStream(await listener.AcceptAsync(), ownsSocket: true);
                Request? request = await Frame.ReadAsync(s, ProtocolJson.Default.Request);
                if (answer is not null) await Frame.WriteAsync(s, answer, ProtocolJson.Default.Response);
                return request;
            }
            finally
            {
                listener.Dispose();
                File.Delete(path);
            }
        }
        return (new AgentClient(ct => ConnectAsync(path, ct)), ServeOnceAsync());
    }

    [Fact]
    public async Task Ping_passes_only_on_a_pong()
    {
        await _client.PingAsync(); // the real server answers pong

        var (wrongFrame, received) = Peer(new Response { Type = ResponseTypes.Ok });
        var e = await Assert.ThrowsAsync<MicroagentException>(() => wrongFrame.PingAsync());
        Assert.Equal(ErrorKind.Permanent, e.Kind);
        Assert.Contains("unexpected 'ok'", e.Message);
        Request? ping = await received.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal((RequestTypes.Ping, ProtocolInfo.Version), (ping!.Type, ping.Version));

        var (hangsUp, _) = Peer(null);
        Assert.Equal(ErrorKind.Transient, (await Assert.ThrowsAsync<MicroagentException>(() => hangsUp.PingAsync())).Kind);
    }

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
    public async Task Shutdown_is_acknowledged_then_run_once()
    {
        await _client.ShutdownAsync();
        // The server acknowledges first and runs the shutdown action after: wait for it rather than read the counter at once.
        await _shutdownRan.Task.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(1, Volatile.Read(ref _shutdowns));
    }

    [Fact]
    public async Task Refused_requests_become_typed_errors()
    {
        var e = await Assert.ThrowsAsync<MicroagentException>(() => _client.ExecAsync(new ExecRequest { Argv = [] }));
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

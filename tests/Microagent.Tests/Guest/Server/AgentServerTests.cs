using System.Buffers.Binary;
using System.Net.Sockets;
using System.Text;
using Microagent.Guest.Exec;
using Microagent.Guest.Server;
using Microagent.Protocol;

namespace Microagent.Tests.Guest.Server;

/// <summary>The protocol server over a real unix socket, in process.</summary>
public sealed class AgentServerTests : IAsyncLifetime
{
    private readonly string _path = Path.Combine(Path.GetTempPath(), $"agent-{Guid.NewGuid():N}.sock");
    private readonly CancellationTokenSource _stop = new();
    private readonly TaskCompletionSource _shutdownRan = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _shutdowns;
    private Task? _serve;

    public Task InitializeAsync()
    {
        var server = new AgentServer(new ExecEngine(new PerChildWaiter()), () =>
        {
            Interlocked.Increment(ref _shutdowns);
            _shutdownRan.TrySetResult();
        });
        // ServeUnixAsync binds and listens before its first await: the socket accepts connections once it returns.
        _serve = Listeners.ServeUnixAsync(_path, server, _stop.Token);
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        _stop.Cancel();
        await _serve!;
        File.Delete(_path);
    }

    /// <summary>Connects to a listening agent (callers wait for the listener first: no retry here).</summary>
    internal static async Task<NetworkStream> ConnectAsync(string path)
    {
        var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            await s.ConnectAsync(new UnixDomainSocketEndPoint(path));
            return new NetworkStream(s, ownsSocket: true);
        }
        catch
        {
            s.Dispose();
            throw;
        }
    }

    internal static async Task<List<Response>> CallAsync(string path, Request request, params Request[] more)
    {
        await using NetworkStream s = await ConnectAsync(path);
        await Frame.WriteAsync(s, request, ProtocolJson.Default.Request);
        foreach (Request r in more) await Frame.WriteAsync(s, r, ProtocolJson.Default.Request);
        var responses = new List<Response>();
        while (await Frame.ReadAsync(s, ProtocolJson.Default.Response) is { } response) responses.Add(response);
        return responses;
    }

    [Fact]
    public async Task PingIsAnsweredWithPong()
    {
        List<Response> r = await CallAsync(_path, new Request { Type = RequestTypes.Ping });
        Assert.Equal(ResponseTypes.Pong, Assert.Single(r).Type);
    }

    [Fact]
    public async Task ExecSingleMode()
    {
        List<Response> r = await CallAsync(_path, new Request { Type = RequestTypes.Exec, Exec = new ExecRequest { Argv = ["sh", "-c", "echo hi; exit 42"] } });
        ExecResult result = Assert.Single(r).Result!;
        Assert.Equal((ExecStatuses.Exited, 42, "hi\n"), (result.Status, result.ExitCode, Encoding.UTF8.GetString(result.Stdout!)));
    }

    [Fact]
    public async Task StreamModeWithStreamedStdinIsFullDuplex()
    {
        await using NetworkStream s = await ConnectAsync(_path);
        await Frame.WriteAsync(s, new Request
        {
            Type = RequestTypes.Exec,
            Exec = new ExecRequest { Argv = ["cat"], StdinStream = true, Mode = ExecModes.Stream, TimeoutMs = 10_000 },
        }, ProtocolJson.Default.Request);
        // Each line must come back before the next is sent: stdin and output flow at the same time.
        for (int i = 0; i < 5; i++)
        {
            await Frame.WriteAsync(s, new Request { Type = RequestTypes.Stdin, Data = Encoding.UTF8.GetBytes($"line {i}\n") }, ProtocolJson.Default.Request);
            Response echo = (await Frame.ReadAsync(s, ProtocolJson.Default.Response).WaitAsync(TimeSpan.FromSeconds(5)))!;
            Assert.Equal(ResponseTypes.Stdout, echo.Type);
            Assert.Equal($"line {i}\n", Encoding.UTF8.GetString(echo.Data!));
        }
        await Frame.WriteAsync(s, new Request { Type = RequestTypes.Stdin, Eof = true }, ProtocolJson.Default.Request);
        Response last = (await Frame.ReadAsync(s, ProtocolJson.Default.Response).WaitAsync(TimeSpan.FromSeconds(5)))!;
        Assert.Equal(ResponseTypes.Result, last.Type);
        Assert.Equal(0, last.Result!.ExitCode);
    }

    [Fact]
    public async Task StreamModeSendsChunksThenResult()
    {
        List<Response> r = await CallAsync(_path, new Request
        {
            Type = RequestTypes.Exec,
            Exec = new ExecRequest { Argv = ["sh", "-c", "head -c 1000000 /dev/zero; echo x >&2"], Mode = ExecModes.Stream },
        });
        Assert.Equal(ResponseTypes.Result, r[^1].Type);
        Assert.Equal(1000000, r.Where(x => x.Type == ResponseTypes.Stdout).Sum(x => x.Data!.Length));
        Assert.Equal(2, r.Where(x => x.Type == ResponseTypes.Stderr).Sum(x => x.Data!.Length));
    }

    [Fact]
    public async Task MalformedFrameGetsInvalidError()
    {
        await using NetworkStream s = await ConnectAsync(_path);
        byte[] junk = "{not json"u8.ToArray();
        var header = new byte[4];
        BinaryPrimitives.WriteInt32BigEndian(header, junk.Length);
        await s.WriteAsync(header);
        await s.WriteAsync(junk);
        Response r = (await Frame.ReadAsync(s, ProtocolJson.Default.Response))!;
        Assert.Equal(("error", "invalid"), (r.Type, r.Error!.Kind));
    }

    [Fact]
    public async Task OversizedLengthGetsInvalidError()
    {
        await using NetworkStream s = await ConnectAsync(_path);
        await s.WriteAsync(new byte[] { 0x7f, 0xff, 0xff, 0xff });
        Response r = (await Frame.ReadAsync(s, ProtocolJson.Default.Response))!;
        Assert.Equal("invalid", r.Error!.Kind);
    }

    [Theory]
    [InlineData("teleport", "unsupported")]
    [InlineData("stdin", "invalid")]
    [InlineData("exec", "invalid")]
    public async Task BadRequestsGetTypedErrors(string type, string kind)
    {
        List<Response> r = await CallAsync(_path, new Request { Type = type });
        Assert.Equal(kind, Assert.Single(r).Error!.Kind);
    }

    [Fact]
    public async Task BadModeAndVersionAreRejected()
    {
        List<Response> mode = await CallAsync(_path, new Request { Type = RequestTypes.Exec, Exec = new ExecRequest { Argv = ["true"], Mode = "tty" } });
        Assert.Equal("invalid", Assert.Single(mode).Error!.Kind);
        List<Response> version = await CallAsync(_path, new Request { Version = 99, Type = RequestTypes.Ping });
        Assert.Equal("unsupported", Assert.Single(version).Error!.Kind);
    }

    [Fact]
    public async Task SetClockWithoutATimeIsInvalid()
    {
        // Only the refusals: a valid set-clock here would set this host's clock (the tests may run as root).
        List<Response> none = await CallAsync(_path, new Request { Type = RequestTypes.SetClock });
        Assert.Equal("invalid", Assert.Single(none).Error!.Kind);
        List<Response> zero = await CallAsync(_path, new Request { Type = RequestTypes.SetClock, ClockUnixNs = 0 });
        Assert.Contains("clockUnixNs", Assert.Single(zero).Error!.Message);
    }

    [Fact]
    public async Task ShutdownIsAcknowledgedThenRun()
    {
        List<Response> r = await CallAsync(_path, new Request { Type = RequestTypes.Shutdown });
        Assert.Equal(ResponseTypes.Ok, Assert.Single(r).Type);
        // Acknowledged first, run after: wait for the action rather than read the counter at once.
        await _shutdownRan.Task.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(1, Volatile.Read(ref _shutdowns));
    }

    [Fact]
    public async Task ClientDisconnectingEarlyDoesNotHurtTheServer()
    {
        for (int i = 0; i < 20; i++)
        {
            await using NetworkStream s = await ConnectAsync(_path);
            await s.WriteAsync(new byte[] { 0, 0 });
        }
        List<Response> r = await CallAsync(_path, new Request { Type = RequestTypes.Ping });
        Assert.Equal(ResponseTypes.Pong, Assert.Single(r).Type);
    }

    [Fact]
    public async Task HundredParallelConnections()
    {
        Task<List<Response>>[] calls = Enumerable.Range(0, 100).Select(i => CallAsync(_path, new Request
        {
            Type = RequestTypes.Exec,
            Exec = new ExecRequest { Argv = ["sh", "-c", $"sleep 0.1; echo {i}"] },
        })).ToArray();
        List<Response>[] all = await Task.WhenAll(calls).WaitAsync(TimeSpan.FromSeconds(30));
        for (int i = 0; i < 100; i++) Assert.Equal($"{i}\n", Encoding.UTF8.GetString(Assert.Single(all[i]).Result!.Stdout!));
    }
}

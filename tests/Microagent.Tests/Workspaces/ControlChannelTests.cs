using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Microagent.Errors;
using Microagent.Mediation;
using Microagent.Workspaces;

namespace Microagent.Tests.Workspaces;

/// <summary>The control server and client over a real unix socket, with a fake handler in place of the supervisor.</summary>
public sealed class ControlChannelTests : IAsyncLifetime
{
    private readonly string _root = Path.Combine("/tmp", $"ma-ut-{Guid.NewGuid():N}"[..16]);
    private readonly FakeHandler _handler = new();
    private ControlServer _server = null!;

    private string Socket => Path.Combine(_root, "control.sock");

    public Task InitializeAsync()
    {
        Directory.CreateDirectory(_root);
        _server = ControlServer.Start(Socket, _handler);
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        if (Directory.Exists(_root)) Directory.Delete(_root, true);
    }

    private sealed class FakeHandler : IControlHandler
    {
        public ConcurrentQueue<ControlRequest> Stops { get; } = new();
        public MediationReadiness? Mediation { get; set; }
        public bool Severed { get; private set; }

        public void RequestStop(ControlRequest request) => Stops.Enqueue(request);

        public ConcurrentQueue<ControlRequest> Freezes { get; } = new();

        public Task<ControlResponse> FreezeAsync(ControlRequest request, CancellationToken ct)
        {
            Freezes.Enqueue(request);
            return Task.FromResult(new ControlResponse { Ok = request.Type == ControlVerb.Pause, Error = request.Type == ControlVerb.Pause ? null : "not paused" });
        }

        public Task<MediationReadiness?> MediationAsync(bool sever, CancellationToken ct)
        {
            if (sever && Mediation is not null) Severed = true;
            return Task.FromResult(Mediation is { } m ? m with { Severed = Severed } : null);
        }

        public bool NetworkSevered { get; private set; }

        public Task<Microagent.Networking.NetworkStatus> NetworkStateAsync(bool sever, CancellationToken ct)
        {
            if (sever) NetworkSevered = true;
            return Task.FromResult(new Microagent.Networking.NetworkStatus("user", [], null, NetworkSevered, "user (default policy)"));
        }

        public Task<SupervisorStats> StatsAsync(CancellationToken ct) => Task.FromResult(new SupervisorStats
        {
            Disks = [new DiskIoStats("root", 4096, 8192, 1, 2)],
            Network = new NetworkIoStats("user", 10, 20, 30, 40, 1),
            GuestMemory = new GuestMemoryStats(256L << 20, 200L << 20, 56L << 20, 1500),
        });

        public bool ConsoleSevered { get; private set; }

        public ConsoleStatus Console(bool sever)
        {
            int closed = sever && !ConsoleSevered ? 2 : 0;
            if (sever) ConsoleSevered = true;
            return new ConsoleStatus(ConsoleSevered, ConsoleSevered ? 0 : 2, closed);
        }

        public void Describe(ControlResponse response)
        {
            response.State = WorkspaceState.Running;
            response.ActiveConnections = 3;
            response.LastActivity = new DateTimeOffset(2026, 12, 2, 8, 0, 0, TimeSpan.Zero);
        }
    }

    [Fact]
    public async Task Pause_and_resume_reach_the_handler_with_the_reason_and_its_answer_comes_back()
    {
        var paused = await ControlClient.SendAsync(Socket, new ControlRequest { Type = ControlVerb.Pause, Reason = "review" }, CancellationToken.None);
        Assert.True(paused.Ok);
        Assert.Equal(WorkspaceState.Running, paused.State);
        var resumed = await ControlClient.SendAsync(Socket, new ControlRequest { Type = ControlVerb.Resume }, CancellationToken.None);
        Assert.False(resumed.Ok);
        Assert.Equal("not paused", resumed.Error);
        Assert.Equal([ControlVerb.Pause, ControlVerb.Resume], _handler.Freezes.Select(f => f.Type));
        Assert.Equal("review", _handler.Freezes.First().Reason);
    }

    [Fact]
    public async Task Halt_and_kill_reach_the_handler_and_every_answer_is_described()
    {
        var r = await ControlClient.SendAsync(Socket, new ControlRequest { Type = ControlVerb.Halt, TimeoutMs = 1234 }, CancellationToken.None);
        Assert.True(r.Ok);
        Assert.Equal(WorkspaceState.Running, r.State);
        Assert.Equal(3, r.ActiveConnections);
        Assert.NotNull(r.LastActivity);
        await ControlClient.SendAsync(Socket, new ControlRequest { Type = ControlVerb.Kill }, CancellationToken.None);
        Assert.Equal(new (ControlVerb, long?)[] { (ControlVerb.Halt, 1234), (ControlVerb.Kill, null) }, _handler.Stops.Select(s => (s.Type, s.TimeoutMs)));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Socket));
    }

    [Fact]
    public async Task Mediation_verbs_answer_with_the_readiness_or_an_error_without_a_channel()
    {
        var none = await ControlClient.SendAsync(Socket, new ControlRequest { Type = ControlVerb.MediationStatus }, CancellationToken.None);
        Assert.False(none.Ok);
        Assert.Contains("no mediation channel", none.Error);

        _handler.Mediation = new MediationReadiness(true, "ok", null, 2048, "127.0.0.1:9", true, true);
        var status = await ControlClient.SendAsync(Socket, new ControlRequest { Type = ControlVerb.MediationStatus }, CancellationToken.None);
        Assert.True(status.Ok);
        Assert.False(status.Mediation!.Severed);
        var severed = await ControlClient.SendAsync(Socket, new ControlRequest { Type = ControlVerb.SeverMediation }, CancellationToken.None);
        Assert.True(severed.Mediation!.Severed);
        Assert.Empty(_handler.Stops);
    }

    [Fact]
    public async Task Network_verbs_report_and_sever_the_network()
    {
        var status = await ControlClient.SendAsync(Socket, new ControlRequest { Type = ControlVerb.NetworkStatus }, CancellationToken.None);
        Assert.True(status.Ok);
        Assert.False(status.Network!.Severed);
        var severed = await ControlClient.SendAsync(Socket, new ControlRequest { Type = ControlVerb.SeverNetwork }, CancellationToken.None);
        Assert.True(severed.Network!.Severed);
        Assert.True(_handler.NetworkSevered);
        Assert.Equal("""{"type":"sever-network"}""", JsonSerializer.Serialize(new ControlRequest { Type = ControlVerb.SeverNetwork }, ControlJson.Default.ControlRequest));
        Assert.Empty(_handler.Stops);
    }

    [Fact]
    public async Task Stats_verb_carries_the_supervisors_figures()
    {
        Assert.Equal("""{"type":"stats"}""", JsonSerializer.Serialize(new ControlRequest { Type = ControlVerb.Stats }, ControlJson.Default.ControlRequest));
        var r = await ControlClient.SendAsync(Socket, new ControlRequest { Type = ControlVerb.Stats }, CancellationToken.None);
        Assert.True(r.Ok);
        Assert.Equal(new DiskIoStats("root", 4096, 8192, 1, 2), Assert.Single(r.Stats!.Disks));
        Assert.Equal(new NetworkIoStats("user", 10, 20, 30, 40, 1), r.Stats.Network);
        Assert.Equal(256L << 20, r.Stats.GuestMemory!.TotalBytes);
        Assert.Equal(WorkspaceState.Running, r.State);
        Assert.Empty(_handler.Stops);
    }

    [Fact]
    public async Task Console_verbs_report_and_sever_the_console_sessions()
    {
        var status = await ControlClient.SendAsync(Socket, new ControlRequest { Type = ControlVerb.ConsoleStatus }, CancellationToken.None);
        Assert.Equal(new ConsoleStatus(false, 2, 0), status.Console);
        var severed = await ControlClient.SendAsync(Socket, new ControlRequest { Type = ControlVerb.SeverConsole }, CancellationToken.None);
        Assert.Equal(new ConsoleStatus(true, 0, 2), severed.Console);
        Assert.True(_handler.ConsoleSevered);
        Assert.Equal("""{"type":"sever-console"}""", JsonSerializer.Serialize(new ControlRequest { Type = ControlVerb.SeverConsole }, ControlJson.Default.ControlRequest));
        Assert.Equal("""{"type":"console-status"}""", JsonSerializer.Serialize(new ControlRequest { Type = ControlVerb.ConsoleStatus }, ControlJson.Default.ControlRequest));
        Assert.Empty(_handler.Stops);
    }

    [Fact]
    public async Task Verbs_keep_their_wire_names_and_an_unknown_name_is_answered_not_dispatched()
    {
        Assert.Equal("""{"type":"mediation-status"}""", JsonSerializer.Serialize(new ControlRequest { Type = ControlVerb.MediationStatus }, ControlJson.Default.ControlRequest));
        Assert.Equal("""{"type":"sever-mediation","timeoutMs":5}""", JsonSerializer.Serialize(new ControlRequest { Type = ControlVerb.SeverMediation, TimeoutMs = 5 }, ControlJson.Default.ControlRequest));
        Assert.Equal(ControlVerb.Halt, JsonSerializer.Deserialize("""{"type":"halt"}""", ControlJson.Default.ControlRequest)!.Type);

        var reply = await RawAsync(Encoding.UTF8.GetBytes("""{"type":"touch"}"""));
        Assert.NotNull(reply);
        var r = JsonSerializer.Deserialize(reply, ControlJson.Default.ControlResponse)!;
        Assert.False(r.Ok);
        Assert.Contains("unknown control request", r.Error);
        Assert.Empty(_handler.Stops);
    }

    [Fact]
    public async Task An_oversized_or_malformed_frame_is_dropped_without_an_answer_and_the_server_keeps_serving()
    {
        Assert.Null(await RawAsync(new byte[ControlChannel.MaxFrameBytes + 1], declaredLength: ControlChannel.MaxFrameBytes + 1));
        Assert.Null(await RawAsync("not json"u8.ToArray()));
        Assert.True((await ControlClient.SendAsync(Socket, new ControlRequest { Type = ControlVerb.Kill }, CancellationToken.None)).Ok);
    }

    [Fact]
    public async Task A_missing_server_is_a_transient_error_and_dispose_removes_the_socket()
    {
        await _server.DisposeAsync();
        Assert.False(File.Exists(Socket));
        var e = await Assert.ThrowsAsync<MicroagentException>(() => ControlClient.SendAsync(Socket, new ControlRequest { Type = ControlVerb.Halt }, CancellationToken.None));
        Assert.Equal(ErrorKind.Transient, e.Kind);
        _server = ControlServer.Start(Socket, _handler);
    }

    /// <summary>Sends one raw frame; returns the answer's payload, or null when the server closed without answering.</summary>
    private async Task<byte[]?> RawAsync(byte[] payload, int? declaredLength = null)
    {
        using var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await s.ConnectAsync(new UnixDomainSocketEndPoint(Socket));
        var header = new byte[4];
        BinaryPrimitives.WriteInt32BigEndian(header, declaredLength ?? payload.Length);
        await s.SendAsync(header);
        try { await s.SendAsync(payload); } catch (SocketException) { } // the server may close before taking it all
        await using var stream = new NetworkStream(s, ownsSocket: false);
        var got = new MemoryStream();
        try { await stream.CopyToAsync(got); } catch (IOException) { } // a reset: the server dropped us
        if (got.Length == 0) return null;
        return got.ToArray()[4..];
    }
}

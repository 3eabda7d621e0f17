using System.Net;
using System.Net.Sockets;
using System.Text;
using Microagent.Guest.Exec;
using Microagent.Guest.Server;
using Microagent.Protocol;

namespace Microagent.Tests.Guest.Server;

/// <summary>The agent's network requests over a real unix socket in dev mode (not PID 1: it must leave the host's network alone).</summary>
public sealed class NetworkRequestsTests : IAsyncLifetime
{
    private readonly string _path = Path.Combine(Path.GetTempPath(), $"agent-net-{Guid.NewGuid():N}.sock");
    private readonly CancellationTokenSource _stop = new();
    private Task? _serve;

    public Task InitializeAsync()
    {
        _serve = Listeners.ServeUnixAsync(_path, new AgentServer(new ExecEngine(new PerChildWaiter()), () => { }), _stop.Token);
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        _stop.Cancel();
        await _serve!;
        File.Delete(_path);
    }

    [Fact]
    public async Task Network_setup_is_refused_outside_a_workspace_vm_and_bad_modes_are_invalid()
    {
        Response r = Assert.Single(await AgentServerTests.CallAsync(_path, new Request { Type = RequestTypes.Network, Network = new NetworkSetup { Mode = NetworkInfo.ModeUser } }));
        Assert.Equal((ResponseTypes.Error, "unsupported"), (r.Type, r.Error!.Kind));
        r = Assert.Single(await AgentServerTests.CallAsync(_path, new Request { Type = RequestTypes.Network, Network = new NetworkSetup { Mode = "bridge" } }));
        Assert.Equal((ResponseTypes.Error, "invalid"), (r.Type, r.Error!.Kind));
        r = Assert.Single(await AgentServerTests.CallAsync(_path, new Request { Type = RequestTypes.Network }));
        Assert.Equal("invalid", r.Error!.Kind);
    }

    [Fact]
    public async Task Net_stats_answers_counters()
    {
        Response r = Assert.Single(await AgentServerTests.CallAsync(_path, new Request { Type = RequestTypes.NetStats }));
        Assert.Equal(ResponseTypes.NetStats, r.Type);
        Assert.NotNull(r.NetStats);
    }

    [Fact]
    public async Task Forward_relays_both_ways_with_half_close_and_refuses_a_closed_port()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        int port = ((IPEndPoint)listener.LocalEndPoint!).Port;
        Task server = Task.Run(async () =>
        {
            using Socket c = await listener.AcceptAsync();
            await using var s = new NetworkStream(c);
            using var got = new MemoryStream();
            await s.CopyToAsync(got); // until the host side half-closes
            await s.WriteAsync(Encoding.ASCII.GetBytes("got:" + Encoding.ASCII.GetString(got.ToArray())));
        });

        await using (NetworkStream s = await AgentServerTests.ConnectAsync(_path))
        {
            await Frame.WriteAsync(s, new Request { Type = RequestTypes.Forward, ForwardPort = port }, ProtocolJson.Default.Request);
            Assert.Equal(ResponseTypes.Ok, (await Frame.ReadAsync(s, ProtocolJson.Default.Response))!.Type);
            await s.WriteAsync("hello"u8.ToArray());
            s.Socket.Shutdown(SocketShutdown.Send);
            using var back = new MemoryStream();
            await s.CopyToAsync(back);
            Assert.Equal("got:hello", Encoding.ASCII.GetString(back.ToArray()));
        }
        await server;

        listener.Close(); // nothing listens on the port now
        Response r = Assert.Single(await AgentServerTests.CallAsync(_path, new Request { Type = RequestTypes.Forward, ForwardPort = port }));
        Assert.Equal("not_found", r.Error!.Kind);
        r = Assert.Single(await AgentServerTests.CallAsync(_path, new Request { Type = RequestTypes.Forward, ForwardPort = 0 }));
        Assert.Equal("invalid", r.Error!.Kind);
    }
}

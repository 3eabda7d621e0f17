using System.Net.Sockets;
using System.Text;
using Microagent.Models;
using Microagent.Protocol;
using Microagent.TestSupport;
using Microagent.Workspaces;

namespace Microagent.Tests.Models;

/// <summary>
/// Quarantine's <c>sever-model</c> on the host end of the model forward (docs/ARCHITECTURE.md "Quarantine"): a real runner (a tiny
/// node HTTP server as the custom backend), a guest-side connection made the way QEMU's hybrid vsock makes it (the unix listener).
/// </summary>
public sealed class ModelForwardSeverTests : IAsyncLifetime
{
    private const string Server = "require('http').createServer((q, s) => s.end(q.url === '/health' ? 'ok' : 'model')).listen(+process.argv[1], process.argv[2])";
    private readonly string _dir = Directory.CreateTempSubdirectory("ma-forward-").FullName;
    private readonly StatePaths _paths;
    private ModelRecord _model = null!;

    public ModelForwardSeverTests() => _paths = new StatePaths(_dir);

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

    private static async Task<string> ReadSomeAsync(Socket s)
    {
        var buf = new byte[4096];
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        int n = await s.ReceiveAsync(buf, SocketFlags.None, timeout.Token);
        return Encoding.ASCII.GetString(buf, 0, n);
    }

    [Fact]
    public async Task Sever_closes_the_open_connection_and_refuses_new_ones()
    {
        var runner = await new ModelRunnerRegistry(_paths).EnsureAsync(_model, new ModelRunnerSpec
        {
            Backend = ModelRunnerBackend.Custom, Command = "node", Args = ["-e", Server, "{port}", "{host}"],
        }, "ws-f");
        var store = new WorkspaceStore(_paths, "ws-f");
        Directory.CreateDirectory(Path.GetDirectoryName(store.HybridSocketPath)!);
        await using var forward = ModelForwardHost.Start(store, new ModelAttachment(_model.Ref, runner.Id, new ModelMediationSettings()), () => { }, _ => { });
        string listener = store.Layout.GuestListener(ModelInfo.HostPort);

        using var open = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await open.ConnectAsync(new UnixDomainSocketEndPoint(listener));
        await open.SendAsync(Encoding.ASCII.GetBytes("GET /v1/models HTTP/1.1\r\nHost: runner\r\n\r\n"));
        Assert.Contains("model", await ReadSomeAsync(open));   // relayed to the runner; keep-alive holds the relay open
        Assert.Equal(1, forward.ActiveConnections);

        string detail = forward.Sever();
        Assert.Contains("1 open connection closed", detail);
        string rest;
        try { rest = await ReadSomeAsync(open); } catch (SocketException) { rest = ""; }
        Assert.Equal("", rest);                                  // the open connection ends (closed or reset)
        Assert.False(File.Exists(listener));
        using var late = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await Assert.ThrowsAsync<SocketException>(async () => await late.ConnectAsync(new UnixDomainSocketEndPoint(listener)));
        await Poll.UntilAsync(() => forward.ActiveConnections == 0, TimeSpan.FromSeconds(10), "the relay to end");
    }
}

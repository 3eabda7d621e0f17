using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Microagent.Mediation;

namespace Microagent.EndToEnd.Tests.Mediation;

/// <summary>One running python workspace <c>med</c> with a required, fail-closed channel 2048 → 127.0.0.1:<see cref="Port"/>.</summary>
public sealed class MediationFixture : IAsyncLifetime
{
    public const string Name = "med";

    public static string PythonImage { get; } = Path.Combine(MicroagentCli.RepoRoot, "build", "images", "python");
    public static string Samples { get; } = Path.Combine(MicroagentCli.RepoRoot, "samples", "mediation");

    public int Port { get; } = FreePort();

    public static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }

    public async Task InitializeAsync()
    {
        Images.Tools.Run("bash", Path.Combine(MicroagentCli.RepoRoot, "scripts", "build-python-image.sh"), PythonImage);
        var create = await MicroagentCli.RunAsync(["create", Name, "--image", $"oci:{PythonImage}", "--memory", "512", "--mediation", $"2048=127.0.0.1:{Port}"]);
        Assert.True(create.ExitCode == 0, create.Stderr);
        var start = await MicroagentCli.RunAsync(["start", Name]);
        Assert.True(start.ExitCode == 0, start.Stderr);
        var cp = await MicroagentCli.RunAsync(["cp", Path.Combine(Samples, "agent.py"), $"{Name}:/tmp/agent.py"]);
        Assert.True(cp.ExitCode == 0, cp.Stderr);
    }

    public async Task DisposeAsync() => await MicroagentCli.RunAsync(["delete", Name, "--force"]);

    /// <summary>Starts a host listener on <paramref name="port"/> (address reuse so it can be restarted at once).</summary>
    public static TcpListener Listen(int port)
    {
        var l = new TcpListener(IPAddress.Loopback, port);
        l.Server.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        l.Start(64);
        return l;
    }

    /// <summary>Accepts the next agent connection, skipping readiness probes (connections that close without a line); returns it with its first message.</summary>
    public static async Task<AgentConnection> AcceptAgentAsync(TcpListener l, CancellationToken ct)
    {
        while (true)
        {
            var s = await l.AcceptSocketAsync(ct);
            var c = new AgentConnection(s);
            var first = await c.Reader.ReadMessageAsync(ct);
            if (first is null) { c.Dispose(); continue; }
            c.First = first;
            return c;
        }
    }

    public static async Task<JsonElement> StatusAsync(string name)
    {
        var r = await MicroagentCli.RunAsync(["status", name, "--json"]);
        Assert.True(r.ExitCode == 0, r.Stderr);
        return JsonDocument.Parse(r.Stdout).RootElement.Clone();
    }

    /// <summary>Guest connections the supervisor accepted on the mediation channel this boot (<c>status</c>'s <c>mediationReady.totalConnections</c>).</summary>
    public static async Task<long> GuestConnectionsAsync(string name) =>
        (await StatusAsync(name)).GetProperty("mediationReady").GetProperty("totalConnections").GetInt64();

    /// <summary>
    /// Accepts the next agent connection and consumes its first line one byte at a time, so that nothing after the line is
    /// buffered away from the caller (probe connections that close without a line are skipped); returns the raw socket.
    /// </summary>
    public static async Task<Socket> AcceptRawAfterFirstLineAsync(TcpListener l, CancellationToken ct)
    {
        var one = new byte[1];
        while (true)
        {
            var s = await l.AcceptSocketAsync(ct);
            int n;
            while ((n = await s.ReceiveAsync(one, SocketFlags.None, ct)) == 1 && one[0] != (byte)'\n') { }
            if (n == 1) return s;
            s.Dispose();
        }
    }

    /// <summary>Waits until the supervisor has accepted at least <paramref name="atLeast"/> guest connections on the channel.</summary>
    public static Task WaitForGuestConnectionsAsync(string name, long atLeast) =>
        Poll.UntilAsync(async () => await GuestConnectionsAsync(name) >= atLeast, TimeSpan.FromMinutes(2),
            $"{atLeast} guest connection(s) on the mediation channel of {name}");

    /// <summary>Runs <c>microagent exec NAME -- ARGS</c> in the background.</summary>
    public static Task<CliResult> ExecAsync(string name, params string[] command) =>
        MicroagentCli.RunAsync(["exec", name, "--", .. command], timeoutSeconds: 300);
}

/// <summary>A host-side agent connection speaking the library's NDJSON reader/writer.</summary>
public sealed class AgentConnection(Socket socket) : IDisposable
{
    private readonly NetworkStream _stream = new(socket, ownsSocket: true);
    public Socket Socket { get; } = socket;
    public NdjsonReader Reader => _reader ??= new NdjsonReader(_stream);
    private NdjsonReader? _reader;
    public NdjsonWriter Writer => _writer ??= new NdjsonWriter(_stream);
    private NdjsonWriter? _writer;
    public MediationMessage First { get; set; } = null!;

    /// <summary>Kills the connection with a reset, as a crashing listener would.</summary>
    public void Reset()
    {
        Socket.LingerState = new LingerOption(true, 0);
        Dispose();
    }

    public void Dispose()
    {
        _writer?.Dispose();
        _stream.Dispose();
    }
}

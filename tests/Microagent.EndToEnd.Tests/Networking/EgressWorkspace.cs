using System.Net;
using System.Net.Sockets;
using System.Text.Json;

namespace Microagent.EndToEnd.Tests.Networking;

/// <summary>
/// A workspace on the user network, through the real CLI, with the two loopback servers named by --add-host: allowed.test
/// (127.0.0.2, on the allowlist) and denied.test (127.0.0.3). The harness's MICROAGENT_EGRESS_LOOPBACK_ONLY=1 keeps every dial
/// on 127.0.0.0/8; each test also checks that the broker never had to refuse one for leaving it.
/// </summary>
public class EgressWorkspace : IAsyncLifetime
{
    private readonly string[] _extra;

    protected EgressWorkspace(string name, params string[] extra)
    {
        Name = name;
        _extra = extra;
    }

    public EgressWorkspace() : this("net-egress") { }

    public string Name { get; }
    public LoopbackHttpServer Allowed { get; } = new("127.0.0.2", "allowed");
    public LoopbackHttpServer Denied { get; } = new("127.0.0.3", "denied");
    public int PublishedPort { get; } = FreePort();

    public string Dir => Path.Combine(MicroagentCli.StateDir, "workspaces", Name);

    public static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }

    public static string[] Hosts => ["--add-host", "allowed.test:127.0.0.2", "--add-host", "denied.test:127.0.0.3", "--egress-allow", "allowed.test"];

    public async Task InitializeAsync()
    {
        var create = await MicroagentCli.RunAsync(["create", Name, .. Hosts, "-p", $"{PublishedPort}:8000", .. _extra]);
        Assert.True(create.ExitCode == 0, create.Stdout + create.Stderr);
        var start = await MicroagentCli.RunAsync(["start", Name]);
        Assert.True(start.ExitCode == 0, start.Stdout + start.Stderr);
    }

    public async Task<CliResult> ShAsync(string script) => await MicroagentCli.RunAsync(["exec", Name, "--timeout", "120s", "--", "sh", "-c", script]);

    /// <summary>The egress audit, through <c>microagent egress --json</c>.</summary>
    public async Task<List<JsonElement>> AuditAsync()
    {
        var r = await MicroagentCli.RunAsync(["egress", Name, "--json"]);
        Assert.True(r.ExitCode == 0, r.Stderr);
        using var doc = JsonDocument.Parse(r.Stdout);
        return [.. doc.RootElement.EnumerateArray().Select(e => e.Clone())];
    }

    /// <summary>Fails when the broker refused a dial for leaving 127.0.0.0/8 (the policy should have refused it first).</summary>
    public void AssertNothingLeftTheHost()
    {
        string log = File.ReadAllText(Path.Combine(Dir, "supervisor.log"));
        Assert.DoesNotContain("ERROR: MICROAGENT_EGRESS_LOOPBACK_ONLY", log);
    }

    public async Task DisposeAsync()
    {
        await MicroagentCli.RunAsync(["delete", Name, "--force"]);
        Allowed.Dispose();
        Denied.Dispose();
    }
}

/// <summary>The locked allowlist and a byte cap.</summary>
public sealed class LockedEgressWorkspace() : EgressWorkspace("net-locked", "--egress-lock-allowlist", "--egress-max-total-bytes", "200000");

using Microagent.Mediation;
using Microagent.Workspaces;

namespace Microagent.Tests.Mediation;

public sealed class MediationConfigTests
{
    [Fact]
    public void Cli_form_is_required_and_fail_closed_unless_optional()
    {
        var m = MediationConfig.Parse("2048=127.0.0.1:9900");
        Assert.Equal((2048u, "127.0.0.1:9900", true, true), (m.Port, m.Target, m.Required, m.FailClosed));
        Assert.Equal(new VsockMapping(2048, "127.0.0.1", 9900), m.ToMapping());
        var o = MediationConfig.Parse("3000=localhost:80", optional: true);
        Assert.False(o.Required);
        Assert.False(o.FailClosed);
        foreach (string bad in new[] { "2048", "x=1.2.3.4:5", "2048=host", "2048=:80", "2048=h:0", "1024=h:1", "1025=h:1", "0=h:1" })
            Assert.Throws<WorkspaceSpecException>(() => MediationConfig.Parse(bad));
    }

    [Fact]
    public void Spec_file_mediation_block_with_defaults_and_kebab_case()
    {
        var spec = WorkspaceSpecFile.Parse("""
            name: agent
            mediation:
              enabled: true
              required: true
              port: 2048
              target: 127.0.0.1:9900
              failClosed: true
            """);
        Assert.Equal(MediationConfig.Parse("2048=127.0.0.1:9900"), spec.Mediation);

        var defaults = WorkspaceSpecFile.Parse("mediation:\n  target: 10.0.0.1:7000\n  fail-closed: false\n  required: false\n");
        Assert.Equal((2048u, "10.0.0.1:7000", false, false), (defaults.Mediation!.Port, defaults.Mediation.Target, defaults.Mediation.Required, defaults.Mediation.FailClosed));
        Assert.Null(WorkspaceSpecFile.Parse("mediation:\n  enabled: false\n  target: 1.2.3.4:5\n").Mediation);
        Assert.Throws<WorkspaceSpecException>(() => WorkspaceSpecFile.Parse("mediation:\n  port: 2048\n"));
        Assert.Throws<WorkspaceSpecException>(() => WorkspaceSpecFile.Parse("mediation:\n  target: 1.2.3.4:5\n  typo: 1\n"));
        // CLI flags override the file.
        var merged = spec.With(new WorkspaceSpec { Mediation = MediationConfig.Parse("2049=127.0.0.1:1", optional: true) });
        Assert.Equal(2049u, merged.Mediation!.Port);
    }

    [Fact]
    public async Task Probe_reports_a_listening_target_ready_and_a_closed_one_as_a_required_error()
    {
        using var l = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        l.Start();
        int port = ((System.Net.IPEndPoint)l.LocalEndpoint).Port;
        var ready = await MediationProbe.ReadinessAsync(MediationConfig.Parse($"2048=127.0.0.1:{port}"), false, 0, 0);
        Assert.True(ready.Ready);
        Assert.Null(ready.Error);
        // A port bound but never listening refuses connects, and no parallel test can take it while it is held.
        using var holder = new System.Net.Sockets.Socket(System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
        holder.Bind(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 0));
        port = ((System.Net.IPEndPoint)holder.LocalEndPoint!).Port;
        var down = await MediationProbe.ReadinessAsync(MediationConfig.Parse($"2048=127.0.0.1:{port}"), false, 0, 0);
        Assert.False(down.Ready);
        Assert.Equal(MediationReadiness.UnreachableError, down.Error);
        Assert.Contains("2048", down.Detail);
        Assert.Contains($"127.0.0.1:{port}", down.Detail);
        var optional = await MediationProbe.ReadinessAsync(MediationConfig.Parse($"2048=127.0.0.1:{port}", optional: true), false, 0, 0);
        Assert.False(optional.Ready);
        Assert.Null(optional.Error);
    }
}

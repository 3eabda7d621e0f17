using System.Net.Sockets;
using System.Text.Json;
using Microagent.Mediation;

namespace Microagent.EndToEnd.Tests.Mediation;

/// <summary>
/// A mediation agent through a snapshot and a restore (docs/ARCHITECTURE.md "Snapshots": in-flight vsock sessions are reset and
/// the guest process reconnects): the sample agent, started in the background before the snapshot, reconnects to the host
/// listener after the capture and again after the restore, as the same process, and keeps answering requests.
/// </summary>
public sealed class MediationRestoreTests
{
    private const string Name = "med-restore";
    private static readonly TimeSpan Limit = TimeSpan.FromMinutes(4);

    private static Task<CliResult> Ma(params string[] args) => MicroagentCli.RunAsync(args);

    private static CliResult Check(CliResult r)
    {
        Assert.True(r.ExitCode == 0, $"exit {r.ExitCode}: {r.Stdout}{r.Stderr}");
        return r;
    }

    private static WorkRequest Add(string id, int a, int b) =>
        new() { RequestId = id, Task = "add", Payload = JsonDocument.Parse($"{{\"a\":{a},\"b\":{b}}}").RootElement };

    /// <summary>Sends one request and reads until its <c>completed</c> signal; returns the sum.</summary>
    private static async Task<int> AskAsync(AgentConnection c, string id, int a, int b, CancellationToken ct)
    {
        await c.Writer.WriteAsync(Add(id, a, b), ct);
        WorkResult? result = null;
        while (true)
        {
            var m = await c.Reader.ReadMessageAsync(ct) ?? throw new InvalidOperationException($"EOF before the result of {id}");
            if (m.Result is { } r) result = r;
            if (m.Signal?.Signal == Signals.Completed) break;
        }
        Assert.Equal(id, result!.RequestId);
        return result.Output!.Value.GetProperty("sum").GetInt32();
    }

    /// <summary>Accepts the agent's next connection after a reset: <c>mediation_broken</c>, then <c>ready</c> from the same agent.</summary>
    private static async Task<AgentConnection> AcceptReconnectAsync(TcpListener l, string agentId, CancellationToken ct)
    {
        var c = await MediationFixture.AcceptAgentAsync(l, ct);
        Assert.Equal(Signals.MediationBroken, c.First.Signal?.Signal);
        var ready = await c.Reader.ReadMessageAsync(ct);
        Assert.Equal(Signals.Ready, ready?.Signal?.Signal);
        Assert.Equal(agentId, ready!.Signal!.AgentId);
        return c;
    }

    [Fact]
    public async Task The_agent_reconnects_after_a_capture_and_after_a_restore_as_the_same_process()
    {
        Images.Tools.Run("bash", Path.Combine(MicroagentCli.RepoRoot, "scripts", "build-python-image.sh"), MediationFixture.PythonImage);
        int port = MediationFixture.FreePort();
        using var l = MediationFixture.Listen(port);
        try
        {
            await Ma("delete", Name, "--force");
            Check(await Ma("create", Name, "--image", $"oci:{MediationFixture.PythonImage}", "--memory", "512", "--mediation", $"2048=127.0.0.1:{port}"));
            Check(await Ma("start", Name));
            Check(await Ma("cp", Path.Combine(MediationFixture.Samples, "agent.py"), $"{Name}:/tmp/agent.py"));
            Check(await Ma("exec", Name, "--", "sh", "-c", "python3 /tmp/agent.py --reconnect >/tmp/agent.log 2>&1 &"));

            string agentId;
            using (var cts = new CancellationTokenSource(Limit))
            using (var c = await MediationFixture.AcceptAgentAsync(l, cts.Token))
            {
                Assert.Equal(Signals.Ready, c.First.Signal?.Signal);
                agentId = c.First.Signal!.AgentId!;
                Assert.Equal(3, await AskAsync(c, "before", 1, 2, cts.Token));

                // The capture unplugs the vsock device: the session is reset and the agent reconnects to the running source.
                Check(await Ma("snapshot", "create", Name, "--tag", "live"));
                using var again = await AcceptReconnectAsync(l, agentId, cts.Token);
                Assert.Equal(7, await AskAsync(again, "after-capture", 3, 4, cts.Token));
            }

            Check(await Ma("halt", Name));
            var restored = Check(await Ma("start", Name, "--from-snapshot", "live", "--json"));
            Assert.Equal("running", JsonDocument.Parse(restored.Stdout).RootElement.GetProperty("state").GetString());
            using (var cts = new CancellationTokenSource(Limit))
            {
                // The restored agent was saved between its reset and its reconnect: it reconnects to the new supervisor's relay.
                using var c = await AcceptReconnectAsync(l, agentId, cts.Token);
                Assert.Equal(11, await AskAsync(c, "after-restore", 5, 6, cts.Token));
                await c.Writer.WriteAsync(new WorkRequest { RequestId = "stop-1", Task = "stop" }, cts.Token);
                while (await c.Reader.ReadMessageAsync(cts.Token) is { } m && m.Signal?.Signal != Signals.Completed) { }
            }
            var log = Check(await Ma("exec", Name, "--", "cat", "/tmp/agent.log")).Stdout;
            Assert.Contains("reconnecting", log);
        }
        finally
        {
            l.Stop();
            await Ma("delete", Name, "--force");
        }
    }
}

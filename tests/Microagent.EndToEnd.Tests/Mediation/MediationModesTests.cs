using System.Net.Sockets;
using System.Text.Json;
using Microagent.Mediation;
using Microagent.Workspaces;

namespace Microagent.EndToEnd.Tests.Mediation;

/// <summary>Optional (fail-open) mode and the supervisor's sever hook, each on its own workspace.</summary>
public sealed class MediationModesTests
{
    private static WorkspaceManager Manager() =>
        new(new StatePaths(MicroagentCli.StateDir), new WorkspaceManagerOptions { SupervisorExecutable = MicroagentCli.Binary });

    private static async Task CreateAndStartAsync(string name, params string[] mediation)
    {
        Images.Tools.Run("bash", Path.Combine(MicroagentCli.RepoRoot, "scripts", "build-python-image.sh"), MediationFixture.PythonImage);
        var create = await MicroagentCli.RunAsync(["create", name, "--image", $"oci:{MediationFixture.PythonImage}", .. mediation]);
        Assert.True(create.ExitCode == 0, create.Stderr);
        var start = await MicroagentCli.RunAsync(["start", name]);
        Assert.True(start.ExitCode == 0, start.Stderr);
        var cp = await MicroagentCli.RunAsync(["cp", Path.Combine(MediationFixture.Samples, "agent.py"), $"{name}:/tmp/agent.py"]);
        Assert.True(cp.ExitCode == 0, cp.Stderr);
    }

    [Fact]
    public async Task Optional_mode_is_not_ready_without_error_and_a_guest_connection_waits_for_the_listener()
    {
        const string name = "med-opt";
        int port = MediationFixture.FreePort();
        try
        {
            await CreateAndStartAsync(name, "--mediation", $"2048=127.0.0.1:{port}", "--mediation-optional");
            var status = await MediationFixture.StatusAsync(name);
            var ready = status.GetProperty("mediationReady");
            Assert.False(ready.GetProperty("ready").GetBoolean());
            Assert.Equal(JsonValueKind.Null, ready.GetProperty("error").ValueKind);
            Assert.Contains("optional", ready.GetProperty("detail").GetString());
            Assert.False(status.GetProperty("mediation").GetProperty("required").GetBoolean());

            // The agent starts before the control plane: its connection is held until the listener comes up. The
            // listener starts only once the supervisor has accepted that guest connection (and cannot reach the target).
            var agent = MediationFixture.ExecAsync(name, "python3", "/tmp/agent.py");
            await MediationFixture.WaitForGuestConnectionsAsync(name, 1);
            using var l = MediationFixture.Listen(port);
            using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(2));
            try
            {
                using var c = await MediationFixture.AcceptAgentAsync(l, cts.Token);
                Assert.Equal(Signals.Ready, c.First.Signal?.Signal);
                await c.Writer.WriteAsync(new WorkRequest { RequestId = "o-1", Task = "add", Payload = JsonDocument.Parse("{\"a\":1,\"b\":1}").RootElement }, cts.Token);
                WorkResult? result = null;
                while (await c.Reader.ReadMessageAsync(cts.Token) is { } m)
                {
                    if (m.Result is { } r) result = r;
                    if (m.Signal?.Signal == Signals.Completed) break;
                }
                Assert.Equal(2, result!.Output!.Value.GetProperty("sum").GetInt32());
                c.Socket.Shutdown(SocketShutdown.Send);
                Assert.Equal(0, (await agent).ExitCode);
                var after = (await MediationFixture.StatusAsync(name)).GetProperty("mediationReady");
                Assert.True(after.GetProperty("ready").GetBoolean());
            }
            finally { l.Stop(); }
        }
        finally { await MicroagentCli.RunAsync(["delete", name, "--force"]); }
    }

    [Fact]
    public async Task Sever_stops_every_byte_and_refuses_new_guest_connections()
    {
        const string name = "med-sev";
        int port = MediationFixture.FreePort();
        var m = Manager();
        using var l = MediationFixture.Listen(port);
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        try
        {
            await CreateAndStartAsync(name, "--mediation", $"2048=127.0.0.1:{port}");
            // The guest streams one line every 100 ms until its connection breaks, then tries to connect again at once:
            // the sever removes the listener before it aborts the relays, so the retry cannot race it.
            var guest = MediationFixture.ExecAsync(name, "python3", "-c", """
                import socket, time
                s = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
                s.connect((2, 2048))
                n = 0
                try:
                    while n < 600:
                        s.sendall(b'{"signal":"ready","detail":"%d"}\n' % n); n += 1; time.sleep(0.1)
                    print("never severed")
                except OSError as e:
                    print("severed after", n, type(e).__name__)
                t = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
                try:
                    t.connect((2, 2048)); t.sendall(b'{"signal":"ready"}\n'); d = t.recv(10)
                    print("reconnect", "eof" if d == b"" else d)
                except OSError as e:
                    print("reconnect refused", type(e).__name__)
                """);
            using var c = await MediationFixture.AcceptAgentAsync(l, cts.Token);
            for (int i = 0; i < 3; i++) Assert.NotNull(await c.Reader.ReadMessageAsync(cts.Token));

            var severed = await m.SeverMediationAsync(name, cts.Token);
            Assert.True(severed.Severed);
            Assert.False(severed.Ready);

            // After severing: the host sees the connection end and no further byte, while the guest keeps trying.
            long after = 0;
            try { while (await c.Reader.ReadLineAsync(cts.Token) is not null) after++; }
            catch (IOException) { }
            // What is read now was already in this socket's buffer when the supervisor aborted the relay (it answers the sever only
            // after that), so it crossed before the sever: a few lines while the sever request was on its way (0.1 s apart, more under
            // load). The proof that nothing crosses after it is the end of this connection, the guest's failed sends and no new connection.
            Assert.True(after <= 20, $"{after} lines were read after the sever: the relay was not aborted");
            var r = await guest;
            Assert.True(r.ExitCode == 0, r.Stderr);
            Assert.Contains("severed after", r.Stdout);
            Assert.Contains("reconnect refused", r.Stdout);
            // No new connection reached the listener.
            l.Server.Blocking = false;
            Assert.False(l.Pending());

            var status = (await MediationFixture.StatusAsync(name)).GetProperty("mediationReady");
            Assert.False(status.GetProperty("ready").GetBoolean());
            Assert.True(status.GetProperty("severed").GetBoolean());
            Assert.Equal(MediationReadiness.SeveredError, status.GetProperty("error").GetString());
            Assert.Equal("running", (await MediationFixture.StatusAsync(name)).GetProperty("state").GetString());
        }
        finally
        {
            l.Stop();
            await MicroagentCli.RunAsync(["delete", name, "--force"]);
        }
    }
}

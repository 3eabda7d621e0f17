using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Microagent.Mediation;
using Microagent.Workspaces;
using Xunit.Abstractions;

namespace Microagent.EndToEnd.Tests.Mediation;

/// <summary>The mediation channel with real VMs: the README pair, 1,000 requests, 20 agents, fail-closed, optional, restart, probes, throughput, sever.</summary>
public sealed class MediationTests(MediationFixture fx, ITestOutputHelper output) : IClassFixture<MediationFixture>
{
    private const string Ws = MediationFixture.Name;
    private static readonly TimeSpan Limit = TimeSpan.FromMinutes(4);

    private static WorkRequest Add(string id, int a, int b) =>
        new() { RequestId = id, Task = "add", Payload = JsonDocument.Parse($"{{\"a\":{a},\"b\":{b}}}").RootElement };

    [Fact]
    public async Task Readme_python_listener_and_agent_exchange_ready_request_accepting_result_completed()
    {
        var psi = new ProcessStartInfo("python3") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = MediationFixture.Samples };
        foreach (string a in new[] { "listener.py", "--port", fx.Port.ToString(), "--once" }) psi.ArgumentList.Add(a);
        using var listener = Process.Start(psi)!;
        try
        {
            string first = (await listener.StandardOutput.ReadLineAsync())!;
            Assert.StartsWith("listening on", first);
            // Exactly the README's command line, run from the samples directory.
            var exec = await MicroagentCli.RunAsync(["exec", Ws, "--stdin", "./agent.py", "--", "sh", "-c", "cat > /tmp/agent.py && python3 /tmp/agent.py"],
                stateDir: null, timeoutSeconds: 120, workingDirectory: MediationFixture.Samples);
            Assert.True(exec.ExitCode == 0, exec.Stdout + exec.Stderr);
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            await listener.WaitForExitAsync(cts.Token);
            string transcript = await listener.StandardOutput.ReadToEndAsync();
            output.WriteLine(transcript);
            Assert.Equal(0, listener.ExitCode);
            string[] order = ["\"signal\": \"ready\"", "\"request_id\": \"req-1\", \"task\": \"add\"", "\"signal\": \"accepting\"", "\"status\": \"ok\", \"output\": {\"sum\": 3}", "\"signal\": \"completed\"", "done"];
            int at = 0;
            foreach (string step in order)
            {
                int i = transcript.IndexOf(step, at, StringComparison.Ordinal);
                Assert.True(i >= 0, $"'{step}' missing (in order) in:\n{transcript}");
                at = i + step.Length;
            }
        }
        finally { if (!listener.HasExited) listener.Kill(); }
    }

    [Fact]
    public async Task A_thousand_requests_over_one_connection_all_matched_by_request_id()
    {
        using var l = MediationFixture.Listen(fx.Port);
        using var cts = new CancellationTokenSource(Limit);
        try
        {
            var agent = MediationFixture.ExecAsync(Ws, "python3", "/tmp/agent.py");
            using var c = await MediationFixture.AcceptAgentAsync(l, cts.Token);
            Assert.Equal(Signals.Ready, c.First.Signal?.Signal);
            var sw = Stopwatch.StartNew();
            var send = Task.Run(async () =>
            {
                for (int i = 0; i < 1000; i++) await c.Writer.WriteAsync(Add($"r-{i}", i, 1000), cts.Token);
            });
            var results = new Dictionary<string, int>();
            int accepting = 0, completed = 0;
            while (results.Count < 1000 || completed < 1000)
            {
                var m = await c.Reader.ReadMessageAsync(cts.Token) ?? throw new InvalidOperationException($"EOF after {results.Count} results");
                if (m.Result is { } r) Assert.True(results.TryAdd(r.RequestId, r.Output!.Value.GetProperty("sum").GetInt32()), $"duplicate {r.RequestId}");
                else if (m.Signal?.Signal == Signals.Accepting) accepting++;
                else if (m.Signal?.Signal == Signals.Completed) completed++;
            }
            await send;
            output.WriteLine($"1000 requests: {sw.ElapsedMilliseconds} ms");
            Assert.Equal(1000, accepting);
            for (int i = 0; i < 1000; i++) Assert.Equal(i + 1000, results[$"r-{i}"]);
            c.Socket.Shutdown(SocketShutdown.Send); // the host closes the channel: the agent exits
            var done = await agent;
            Assert.True(done.ExitCode == 0, done.Stderr);
        }
        finally { l.Stop(); }
    }

    [Fact]
    public async Task Twenty_concurrent_agents_each_get_their_own_connection()
    {
        using var l = MediationFixture.Listen(fx.Port);
        using var cts = new CancellationTokenSource(Limit);
        try
        {
            var agents = MediationFixture.ExecAsync(Ws, "sh", "-c", "for i in $(seq 20); do python3 /tmp/agent.py & done; wait");
            var served = new List<Task<string>>();
            for (int n = 0; n < 20; n++)
            {
                var c = await MediationFixture.AcceptAgentAsync(l, cts.Token);
                served.Add(Task.Run(async () =>
                {
                    using (c)
                    {
                        string id = c.First.Signal!.AgentId!;
                        for (int i = 0; i < 5; i++)
                        {
                            await c.Writer.WriteAsync(Add($"{id}-{i}", i, 7), cts.Token);
                            WorkResult? result = null;
                            while (true)
                            {
                                var m = await c.Reader.ReadMessageAsync(cts.Token) ?? throw new InvalidOperationException("EOF");
                                if (m.Result is { } r) result = r;
                                if (m.Signal?.Signal == Signals.Completed) break;
                            }
                            Assert.Equal($"{id}-{i}", result!.RequestId);
                            Assert.Equal(i + 7, result.Output!.Value.GetProperty("sum").GetInt32());
                        }
                        c.Socket.Shutdown(SocketShutdown.Send);
                        return id;
                    }
                }));
            }
            var ids = await Task.WhenAll(served);
            Assert.Equal(20, ids.Distinct().Count());
            var done = await agents;
            Assert.True(done.ExitCode == 0, done.Stderr);
        }
        finally { l.Stop(); }
    }

    [Fact]
    public async Task Fail_closed_without_a_listener_reports_the_error_and_the_guest_cannot_exchange()
    {
        var status = await MediationFixture.StatusAsync(Ws);
        var ready = status.GetProperty("mediationReady");
        Assert.False(ready.GetProperty("ready").GetBoolean());
        Assert.Equal("required mediation target is unreachable", ready.GetProperty("error").GetString());
        string detail = ready.GetProperty("detail").GetString()!;
        Assert.Contains("2048", detail);
        Assert.Contains($"127.0.0.1:{fx.Port}", detail);
        Assert.True(status.GetProperty("mediation").GetProperty("failClosed").GetBoolean());

        var probe = await MediationFixture.ExecAsync(Ws, "python3", "-c", """
            import socket
            s = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
            try:
                s.connect((2, 2048)); s.sendall(b'{"signal":"ready"}\n'); print("recv", s.recv(100))
            except OSError as e:
                print("refused", type(e).__name__)
            """);
        Assert.True(probe.ExitCode == 0, probe.Stderr);
        Assert.True(probe.Stdout.Trim() is "recv b''" || probe.Stdout.StartsWith("refused"), probe.Stdout);
    }

    [Fact]
    public async Task Listener_restart_mid_stream_the_agent_reconnects_and_the_request_is_retried_by_request_id()
    {
        using var cts = new CancellationTokenSource(Limit);
        var agent = MediationFixture.ExecAsync(Ws, "python3", "/tmp/agent.py", "--reconnect");
        var l = MediationFixture.Listen(fx.Port);
        try
        {
            using (var c = await MediationFixture.AcceptAgentAsync(l, cts.Token))
            {
                Assert.Equal(Signals.Ready, c.First.Signal?.Signal);
                await c.Writer.WriteAsync(Add("inflight-1", 40, 2), cts.Token);
                var accepted = await c.Reader.ReadMessageAsync(cts.Token);
                Assert.Equal(Signals.Accepting, accepted?.Signal?.Signal);
                c.Reset(); // the listener dies with the request in flight
            }
            l.Stop();
            // Down until the agent has tried again at least once: a connection accepted after the stop finds no
            // listener and is closed at once (fail-closed).
            long before = await MediationFixture.GuestConnectionsAsync(Ws);
            await MediationFixture.WaitForGuestConnectionsAsync(Ws, before + 1);
            l = MediationFixture.Listen(fx.Port);
            using var again = await MediationFixture.AcceptAgentAsync(l, cts.Token);
            var seen = new List<string> { again.First.Signal!.Signal };
            if (seen[0] == Signals.MediationBroken) seen.Add((await again.Reader.ReadMessageAsync(cts.Token))!.Signal!.Signal);
            Assert.Equal([Signals.MediationBroken, Signals.Ready], seen);
            await again.Writer.WriteAsync(Add("inflight-1", 40, 2), cts.Token); // retried with the same request_id
            WorkResult? result = null;
            while (true)
            {
                var m = await again.Reader.ReadMessageAsync(cts.Token) ?? throw new InvalidOperationException("EOF");
                if (m.Result is { } r) result = r;
                if (m.Signal?.Signal == Signals.Completed) break;
            }
            Assert.Equal(("inflight-1", 42), (result!.RequestId, result.Output!.Value.GetProperty("sum").GetInt32()));
            await again.Writer.WriteAsync(new WorkRequest { RequestId = "stop-1", Task = "stop" }, cts.Token);
            var done = await agent;
            Assert.True(done.ExitCode == 0, done.Stderr);
            Assert.Contains("reconnecting", done.Stderr);
        }
        finally { l.Stop(); }
    }

    [Fact]
    public async Task A_listener_that_accepts_and_closes_at_once_is_tolerated()
    {
        using var l = MediationFixture.Listen(fx.Port);
        using var cts = new CancellationTokenSource(Limit);
        int accepted = 0;
        var closer = Task.Run(async () =>
        {
            while (!cts.IsCancellationRequested)
            {
                try { (await l.AcceptSocketAsync(cts.Token)).Dispose(); Interlocked.Increment(ref accepted); }
                catch (Exception) { return; }
            }
        });
        try
        {
            var ready = (await MediationFixture.StatusAsync(Ws)).GetProperty("mediationReady");
            Assert.True(ready.GetProperty("ready").GetBoolean(), ready.ToString());
            Assert.Equal(JsonValueKind.Null, ready.GetProperty("error").ValueKind);
            // The agent sees the host close the channel and exits normally; nothing in the runtime breaks.
            var agent = await MediationFixture.ExecAsync(Ws, "python3", "/tmp/agent.py");
            Assert.True(agent.ExitCode == 0, agent.Stderr);
            for (int i = 0; i < 5; i++) Assert.Equal(0, (await MediationFixture.ExecAsync(Ws, "python3", "/tmp/agent.py")).ExitCode);
            Assert.True(accepted >= 7, $"accepted {accepted}");
            var status = await MediationFixture.StatusAsync(Ws);
            Assert.Equal("running", status.GetProperty("state").GetString());
            Assert.True(status.GetProperty("mediationReady").GetProperty("totalConnections").GetInt64() >= 6);
        }
        finally
        {
            cts.Cancel();
            l.Stop();
            await closer;
        }
    }

    [Fact]
    public async Task Throughput_of_100_MiB_through_the_channel()
    {
        using var l = MediationFixture.Listen(fx.Port);
        using var cts = new CancellationTokenSource(Limit);
        try
        {
            var guest = MediationFixture.ExecAsync(Ws, "python3", "-c", """
                import socket, time
                s = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
                s.connect((2, 2048))
                s.sendall(b'{"signal":"ready"}\n')
                chunk = b"x" * (1 << 20)
                t = time.time()
                for _ in range(100):
                    s.sendall(chunk)
                s.shutdown(socket.SHUT_WR)
                print(s.makefile("rb").readline().decode().strip(), "guest-seconds=%.2f" % (time.time() - t))
                """);
            // The ready line is read unbuffered: every byte after it must be counted here.
            using var socket = await MediationFixture.AcceptRawAfterFirstLineAsync(l, cts.Token);
            var sw = Stopwatch.StartNew();
            long total = 0;
            var buf = new byte[256 * 1024];
            int n;
            while ((n = await socket.ReceiveAsync(buf, SocketFlags.None, cts.Token)) > 0) total += n;
            sw.Stop();
            await socket.SendAsync(Encoding.ASCII.GetBytes($"got {total}\n"));
            socket.Shutdown(SocketShutdown.Send);
            var r = await guest;
            Assert.True(r.ExitCode == 0, r.Stderr);
            Assert.Equal(100L << 20, total);
            Assert.Contains($"got {100L << 20}", r.Stdout);
            double mbps = total / 1e6 / sw.Elapsed.TotalSeconds;
            output.WriteLine($"mediation throughput guest->host: {total >> 20} MiB in {sw.Elapsed.TotalSeconds:0.00} s = {mbps:0.0} MB/s ({total / 1048576.0 / sw.Elapsed.TotalSeconds:0.0} MiB/s); guest: {r.Stdout.Trim()}");
            Console.WriteLine($"mediation throughput guest->host: {mbps:0.0} MB/s");
        }
        finally { l.Stop(); }
    }
}

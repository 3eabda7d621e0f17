using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Microagent.EndToEnd.Tests.Networking;

namespace Microagent.EndToEnd.Tests.Containment;

/// <summary>
/// <c>quarantine</c> through the real binary, real QEMU and the real guest (docs/ARCHITECTURE.md "Quarantine"): a workspace with
/// an open mediation session, a live published-port connection and a download in flight is quarantined; each host-side socket
/// sees its end within a second of the fence, every phase is recorded, start is refused until kill, then start boots from the
/// disk. And a CLI killed with SIGKILL half-way leaves a truthful record that a retry completes.
/// </summary>
public sealed class QuarantineTests(Xunit.Abstractions.ITestOutputHelper output)
{
    private static Task<CliResult> Ma(params string[] args) => MicroagentCli.RunAsync(args);

    private static JsonElement Json(CliResult r) => JsonDocument.Parse(r.Stdout).RootElement.Clone();

    private static string Dir(string name) => Path.Combine(MicroagentCli.StateDir, "workspaces", name);

    /// <summary>A guest program that connects to host port ARGV[1] over vsock, says hello and reads until the connection ends (busybox has no vsock client).</summary>
    private const string VsockClient = """
        #include <sys/socket.h>
        #include <linux/vm_sockets.h>
        #include <stdlib.h>
        #include <unistd.h>
        int main(int argc, char **argv) {
          int s = socket(AF_VSOCK, SOCK_STREAM, 0);
          struct sockaddr_vm a = { .svm_family = AF_VSOCK, .svm_cid = 2, .svm_port = (unsigned)atoi(argv[1]) };
          if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof a) < 0) return 1;
          write(s, "hello\n", 6);
          char b[256];
          while (read(s, b, sizeof b) > 0) {}
          return 0;
        }
        """;

    private static string BuildVsockClient()
    {
        string dir = Directory.CreateTempSubdirectory("ma-vsockc-").FullName;
        File.WriteAllText(Path.Combine(dir, "c.c"), VsockClient);
        var p = Process.Start(new ProcessStartInfo("gcc", ["-static", "-O1", "-o", Path.Combine(dir, "vsockc"), Path.Combine(dir, "c.c")]) { RedirectStandardError = true })!;
        string err = p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, $"gcc -static (the guest's vsock client): {err}");
        return Path.Combine(dir, "vsockc");
    }

    /// <summary>Reads <paramref name="s"/> until its peer ends it (EOF or reset); returns when that was seen.</summary>
    private static async Task<DateTimeOffset> EndOfAsync(Socket s)
    {
        var buf = new byte[64 * 1024];
        try { while (await s.ReceiveAsync(buf) > 0) { } }
        catch (SocketException) { }
        return DateTimeOffset.UtcNow;
    }

    [Fact]
    public async Task Quarantine_closes_mediation_published_port_and_download_within_a_second_then_start_is_refused_until_kill()
    {
        const string ws = "quar-live";
        string client = BuildVsockClient();
        using var mediation = new TcpListener(IPAddress.Loopback, 0);
        mediation.Start();
        int mport = ((IPEndPoint)mediation.LocalEndpoint).Port;
        // A download that never finishes: headers, then a trickle of bytes.
        using var slow = new TcpListener(IPAddress.Parse("127.0.0.2"), 0);
        slow.Start();
        int sport = ((IPEndPoint)slow.LocalEndpoint).Port;
        int published = EgressWorkspace.FreePort();
        try
        {
            var create = await Ma("create", ws, "--mediation", $"2048=127.0.0.1:{mport}", "--add-host", "slow.test:127.0.0.2", "--egress-allow", "slow.test",
                "-p", $"{published}:8000");
            Assert.True(create.ExitCode == 0, create.Stderr);
            var start = await Ma("start", ws);
            Assert.True(start.ExitCode == 0, start.Stderr);
            var cp = await Ma("cp", client, $"{ws}:/tmp/vsockc");
            Assert.True(cp.ExitCode == 0, cp.Stderr);

            // The mediation session: the guest connects, the host accepts (skipping readiness probes) and reads its hello.
            var bg = await Ma("exec", ws, "--", "sh", "-c",
                "setsid /tmp/vsockc 2048 </dev/null >/dev/null 2>&1 & " +
                $"setsid wget -q -O /dev/null http://slow.test:{sport}/big </dev/null >/dev/null 2>&1 & " +
                "setsid sh -c 'sleep 100000 | nc -l -p 8000 > /tmp/got' </dev/null >/dev/null 2>&1 & sleep 1; echo started");
            Assert.True(bg.ExitCode == 0, bg.Stderr);
            using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(2));
            Socket med;
            while (true)
            {
                med = await mediation.AcceptSocketAsync(cts.Token);
                var hello = new byte[6];
                int n = await med.ReceiveAsync(hello, cts.Token);
                if (n > 0) break;
                med.Dispose();
            }
            using var medSocket = med;
            var download = await slow.AcceptSocketAsync(cts.Token);
            using var dl = download;
            await dl.SendAsync(Encoding.ASCII.GetBytes("HTTP/1.0 200 OK\r\nContent-Length: 1000000000\r\n\r\n"));
            var trickle = Task.Run(async () =>
            {
                var chunk = new byte[1024];
                try { while (true) { await dl.SendAsync(chunk); await Task.Delay(50); } }
                catch (Exception e) when (e is SocketException or ObjectDisposedException) { return DateTimeOffset.UtcNow; }
            });
            var dlEnd = EndOfAsync(dl);
            // The published-port connection, live: what the host sends arrives in the guest.
            using var pub = new Socket(SocketType.Stream, ProtocolType.Tcp);
            await pub.ConnectAsync(IPAddress.Loopback, published, cts.Token);
            await pub.SendAsync(Encoding.ASCII.GetBytes("ping\n"));
            await Poll.UntilAsync(async () => (await Ma("exec", ws, "--", "cat", "/tmp/got")).Stdout.Contains("ping"), TimeSpan.FromMinutes(1), "the published connection to carry bytes");
            var medEnd = EndOfAsync(medSocket);
            var pubEnd = EndOfAsync(pub);

            var q = await MicroagentCli.RunAsync(["quarantine", ws, "--reason", "e2e: unexpected traffic", "--json"], timeoutSeconds: 300);
            Assert.True(q.ExitCode == 0, q.Stdout + q.Stderr);
            var result = Json(q);
            Assert.Equal("quarantined", result.GetProperty("state").GetString());
            var record = result.GetProperty("record");
            var phases = record.GetProperty("phases").EnumerateArray().ToList();
            Assert.Equal(["fence", "freeze", "sever-network", "sever-mediation", "sever-model", "sever-vsock", "sever-console", "capture", "stop"],
                phases.Select(p => p.GetProperty("name").GetString()!).ToArray());
            foreach (var p in phases)
            {
                Assert.True(p.GetProperty("status").GetString() is "done" or "skipped", p.ToString());
                Assert.True(p.TryGetProperty("at", out _), p.ToString());
            }
            foreach (string must in new[] { "fence", "freeze", "sever-network", "sever-mediation", "capture", "stop" })
                Assert.Equal("done", phases.Single(p => p.GetProperty("name").GetString() == must).GetProperty("status").GetString());
            var fenced = phases[0].GetProperty("at").GetDateTimeOffset();
            foreach (var p in phases) output.WriteLine($"{p.GetProperty("name").GetString(),-16} {p.GetProperty("status").GetString(),-8} +{(p.GetProperty("at").GetDateTimeOffset() - fenced).TotalMilliseconds:0} ms  {(p.TryGetProperty("detail", out var d) ? d.GetString() : "")}");
            foreach (var (what, end) in new[] { ("mediation", medEnd), ("published port", pubEnd), ("download", dlEnd) })
            {
                Assert.True(await Task.WhenAny(end, Task.Delay(TimeSpan.FromSeconds(30))) == end, $"the {what} connection was not closed");
                var took = await end - fenced;
                output.WriteLine($"{what}: closed {took.TotalMilliseconds:0} ms after the fence");
                Assert.True(took < TimeSpan.FromSeconds(1), $"the {what} connection ended {took.TotalMilliseconds:0} ms after the fence");
            }
            await trickle.WaitAsync(TimeSpan.FromSeconds(30));
            string tag = record.GetProperty("forensicTag").GetString()!;
            Assert.StartsWith("forensic-", tag);
            Assert.True(File.Exists(Path.Combine(Dir(ws), "snapshots", tag, "memory.elf")));
            Assert.Empty(MicroagentCli.QemuProcessesUnder(Dir(ws)));

            var status = Json(await Ma("status", ws, "--json"));
            Assert.Equal("quarantined", status.GetProperty("state").GetString());
            Assert.Equal("severed by quarantine", status.GetProperty("mediationReady").GetProperty("error").GetString());
            Assert.True(status.GetProperty("containment").GetProperty("completedAt").ValueKind == JsonValueKind.String);

            var refused = await Ma("start", ws);
            Assert.Equal(1, refused.ExitCode);
            Assert.Contains("quarantined", refused.Stderr);
            Assert.Contains("kill", refused.Stderr);

            var kill = await Ma("kill", ws, "--json");
            Assert.True(kill.ExitCode == 0, kill.Stderr);
            Assert.Equal("stopped", Json(kill).GetProperty("state").GetString());
            var forensic = await Ma("start", ws, "--from-snapshot", tag);
            Assert.Equal(1, forensic.ExitCode);
            Assert.Contains("forensic", forensic.Stderr);
            var again = await Ma("start", ws);
            Assert.True(again.ExitCode == 0, again.Stderr);
            var exec = await Ma("exec", ws, "--", "echo", "alive");
            Assert.True(exec.ExitCode == 0 && exec.Stdout.Contains("alive"), exec.Stderr);
            Assert.Equal("stopped", Json(await Ma("status", ws, "--json")).GetProperty("containment").GetProperty("released").GetProperty("state").GetString());
        }
        finally
        {
            await Ma("delete", ws, "--force");
            Directory.Delete(Path.GetDirectoryName(client)!, true);
        }
    }

    [Fact]
    public async Task Kill_9_of_the_cli_mid_quarantine_leaves_a_truthful_record_and_a_retry_completes_it()
    {
        const string ws = "quar-kill9";
        string record = Path.Combine(Dir(ws), "containment.json");
        try
        {
            Assert.True((await Ma("create", ws)).ExitCode == 0);
            var start = await Ma("start", ws);
            Assert.True(start.ExitCode == 0, start.Stderr);

            using var cli = MicroagentCli.Start(["quarantine", ws, "--reason", "e2e: kill -9 half-way"]);
            // The fence is the first thing written: once it is there, the CLI dies by SIGKILL.
            await Poll.UntilAsync(() => File.Exists(record) && File.ReadAllText(record).Contains("\"fence\"") &&
                JsonDocument.Parse(File.ReadAllText(record)).RootElement.GetProperty("phases")[0].GetProperty("status").GetString() == "done",
                TimeSpan.FromMinutes(2), "the fence in containment.json");
            cli.Kill();
            await cli.WaitForExitAsync();

            bool qemuAlive = MicroagentCli.QemuProcessesUnder(Dir(ws)).Count > 0; // looked at before the record: the record may only be further on
            var status = Json(await Ma("status", ws, "--json"));
            Assert.Equal("quarantined", status.GetProperty("state").GetString());
            var phases = status.GetProperty("containment").GetProperty("phases").EnumerateArray().ToList();
            Assert.Equal("done", phases[0].GetProperty("status").GetString());
            // Truthful: no phase is done after one that has not begun, and the VM exists exactly while the stop phase is not done.
            var statuses = phases.Select(p => p.GetProperty("status").GetString()!).ToList();
            int firstPending = statuses.IndexOf("pending");
            if (firstPending >= 0) Assert.DoesNotContain("done", statuses.Skip(firstPending));
            if (statuses[^1] == "pending") Assert.True(qemuAlive, "the record says the VM was not stopped yet, but QEMU was gone");
            if (statuses[^1] == "done") Assert.Empty(MicroagentCli.QemuProcessesUnder(Dir(ws)));

            var retry = await MicroagentCli.RunAsync(["quarantine", ws, "--reason", "e2e: kill -9 half-way", "--json"], timeoutSeconds: 300);
            Assert.True(retry.ExitCode == 0, retry.Stdout + retry.Stderr);
            var done = Json(retry).GetProperty("record");
            Assert.All(done.GetProperty("phases").EnumerateArray(), p => Assert.True(p.GetProperty("status").GetString() is "done" or "skipped", p.ToString()));
            Assert.Equal(JsonValueKind.String, done.GetProperty("completedAt").ValueKind);
            Assert.Empty(MicroagentCli.QemuProcessesUnder(Dir(ws)));
            Assert.Equal("quarantined", Json(await Ma("status", ws, "--json")).GetProperty("state").GetString());

            var halt = await Ma("halt", ws, "--json");
            Assert.True(halt.ExitCode == 0, halt.Stderr);
            Assert.Equal("halted", Json(halt).GetProperty("state").GetString());
        }
        finally
        {
            await Ma("delete", ws, "--force");
        }
    }
}

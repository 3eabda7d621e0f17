using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Microagent.EndToEnd.Tests.Mediation;

namespace Microagent.EndToEnd.Tests.Vsock;

/// <summary>
/// A hostile guest must not grow the host: a guest opens 1,000 connections to a <c>--vsock</c> mapping and pushes
/// 100 MiB through 50 of them. The supervisor refuses what is beyond its guest connection cap (the guest's connect
/// fails), records that in an event, stays under 64 MiB RSS, and exec keeps working throughout.
/// </summary>
public sealed class VsockFloodTests
{
    private const string Ws = "flood";
    private const int Connections = 1000, Pushers = 50, PerPusher = 2 * 1024 * 1024, Cap = 256;
    private const long RssLimitKiB = 64 * 1024;

    // Opens the connections one after another (a refused one fails at once with a reset), pushes from 50 threads,
    // reports "<open> <refused>" atomically, then holds everything open until the host writes the fifo.
    private const string FloodScript = """
        import os, resource, socket, sys, threading
        port, total, pushers, per = (int(a) for a in sys.argv[1:5])
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        conns, refused = [], 0
        for _ in range(total):
            s = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
            try:
                s.connect((2, port))
                conns.append(s)
            except OSError:
                s.close()
                refused += 1
        chunk = os.urandom(64 * 1024)
        def push(s):
            sent = 0
            while sent < per:
                s.sendall(chunk)
                sent += len(chunk)
        threads = [threading.Thread(target=push, args=(s,)) for s in conns[:pushers]]
        for t in threads: t.start()
        for t in threads: t.join()
        with open("/tmp/flood.out.tmp", "w") as f: f.write(f"{len(conns)} {refused}\n")
        os.rename("/tmp/flood.out.tmp", "/tmp/flood.out")
        open("/tmp/flood.release").read()
        print(f"{len(conns)} {refused}")
        """;

    [Fact]
    public async Task Flooding_a_vsock_mapping_is_capped_and_the_supervisor_stays_small_while_exec_works()
    {
        Images.Tools.Run("bash", Path.Combine(MicroagentCli.RepoRoot, "scripts", "build-python-image.sh"), MediationFixture.PythonImage);
        using var sink = new TcpListener(IPAddress.Loopback, 0);
        sink.Start(512);
        int port = ((IPEndPoint)sink.LocalEndpoint).Port;
        using var stop = new CancellationTokenSource();
        long received = 0;
        var sinkTask = DrainAllAsync(sink, n => Interlocked.Add(ref received, n), stop.Token);
        try
        {
            var create = await MicroagentCli.RunAsync(["create", Ws, "--image", $"oci:{MediationFixture.PythonImage}", "--memory", "512", "--vsock", $"3000=127.0.0.1:{port}"]);
            Assert.True(create.ExitCode == 0, create.Stderr);
            var start = await MicroagentCli.RunAsync(["start", Ws]);
            Assert.True(start.ExitCode == 0, start.Stderr);
            int supervisor = (await MediationFixture.StatusAsync(Ws)).GetProperty("pids").GetProperty("supervisor").GetInt32();
            long before = RssKiB(supervisor);
            var prep = await MicroagentCli.RunAsync(["exec", Ws, "--stdin", "-", "--", "sh", "-c", "cat > /tmp/flood.py && mkfifo /tmp/flood.release"],
                Encoding.UTF8.GetBytes(FloodScript));
            Assert.True(prep.ExitCode == 0, prep.Stderr);

            var flood = MicroagentCli.RunAsync(["exec", Ws, "--", "python3", "/tmp/flood.py", "3000", $"{Connections}", $"{Pushers}", $"{PerPusher}"],
                timeoutSeconds: 600);
            long peak = before;
            int execs = 0;
            string report = "";
            var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(8);
            while (report.Length == 0)
            {
                // Each round is an exec of its own while the flood runs: it must keep working.
                var probe = await MicroagentCli.RunAsync(["exec", Ws, "--", "sh", "-c", "cat /tmp/flood.out 2>/dev/null || true"]);
                Assert.True(probe.ExitCode == 0, $"exec failed during the flood: {probe.Stderr}");
                execs++;
                report = probe.Stdout.Trim();
                peak = Math.Max(peak, RssKiB(supervisor));
                Assert.False(flood.IsCompleted, $"the flood script ended early: {(flood.IsCompleted ? (await flood).Stderr : "")}");
                Assert.True(DateTime.UtcNow < deadline, "the flood did not finish in time");
            }
            peak = Math.Max(peak, RssKiB(supervisor));
            var echo = await MicroagentCli.RunAsync(["exec", Ws, "--", "echo", "still-here"]);
            Assert.Equal("still-here\n", echo.Stdout);

            long[] counts = report.Split(' ').Select(long.Parse).ToArray();
            Assert.Equal(Cap, counts[0]);
            Assert.Equal(Connections - Cap, counts[1]);
            var events = await MicroagentCli.RunAsync(["events", Ws, "--json"]);
            Assert.Contains(JsonDocument.Parse(events.Stdout).RootElement.EnumerateArray(),
                e => e.GetProperty("detail").GetString()?.Contains("guest connection cap reached", StringComparison.Ordinal) == true);
            Assert.True(peak < RssLimitKiB, $"supervisor RSS peaked at {peak} KiB (before the flood: {before} KiB)");
            Assert.True(execs > 0);

            var release = await MicroagentCli.RunAsync(["exec", Ws, "--", "sh", "-c", "echo go > /tmp/flood.release"]);
            Assert.True(release.ExitCode == 0, release.Stderr);
            var done = await flood;
            Assert.True(done.ExitCode == 0, done.Stderr);
            Assert.True(Interlocked.Read(ref received) >= (long)Pushers * PerPusher, $"the host received {received} bytes");
            Assert.True(RssKiB(supervisor) < RssLimitKiB);
        }
        finally
        {
            await MicroagentCli.RunAsync(["delete", Ws, "--force"]);
            stop.Cancel();
            sink.Stop();
            try { await sinkTask; } catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException) { }
        }
    }

    /// <summary>Accepts every connection and reads it to the end, counting the bytes.</summary>
    private static async Task DrainAllAsync(TcpListener listener, Action<int> count, CancellationToken ct)
    {
        var readers = new List<Task>();
        try
        {
            while (!ct.IsCancellationRequested)
            {
                var s = await listener.AcceptSocketAsync(ct);
                readers.Add(Task.Run(async () =>
                {
                    using (s)
                    {
                        var buffer = new byte[64 * 1024];
                        try
                        {
                            int n;
                            while ((n = await s.ReceiveAsync(buffer, SocketFlags.None, ct)) > 0) count(n);
                        }
                        catch (Exception e) when (e is OperationCanceledException or SocketException) { }
                    }
                }, CancellationToken.None));
            }
        }
        finally { await Task.WhenAll(readers); }
    }

    private static long RssKiB(int pid)
    {
        foreach (string line in File.ReadLines($"/proc/{pid}/status"))
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]);
        throw new InvalidOperationException($"no VmRSS for pid {pid}");
    }
}

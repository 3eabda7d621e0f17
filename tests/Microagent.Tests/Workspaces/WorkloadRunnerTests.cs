using System.Collections.Concurrent;
using System.Net.Sockets;
using Microagent.Agent;
using Microagent.Errors;
using Microagent.Guest.Exec;
using Microagent.Guest.Server;
using Microagent.Protocol;
using Microagent.Tests.Images;
using Microagent.Workspaces;

namespace Microagent.Tests.Workspaces;

/// <summary>
/// The workload as an agent job (docs/ARCHITECTURE.md "Snapshots"), against the real agent server in process over a unix socket:
/// a reset connection (a capture or restore) does not end it, the host re-attaches, and it is started only once.
/// </summary>
public sealed class WorkloadRunnerTests : IAsyncLifetime
{
    private readonly TempDir _tmp = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentQueue<Socket> _sockets = new();
    private string _path = "";
    private Task? _serve;
    private int _connects;

    public Task InitializeAsync()
    {
        _path = Path.Combine(Path.GetTempPath(), $"workload-{Guid.NewGuid():N}.sock");
        _serve = Listeners.ServeUnixAsync(_path, new AgentServer(new ExecEngine(new PerChildWaiter()), () => { }), _stop.Token);
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        await _stop.CancelAsync();
        await _serve!;
        File.Delete(_path);
        _tmp.Dispose();
    }

    /// <summary>Connections to the agent; the second attempt fails as a vsock connect to a guest that is not back yet does.</summary>
    private async Task<Stream> ConnectAsync(CancellationToken ct)
    {
        if (Interlocked.Increment(ref _connects) == 2) throw MicroagentException.Transient("the guest refused or reset the vsock connection to port 1024");
        var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await s.ConnectAsync(new UnixDomainSocketEndPoint(_path), ct);
        _sockets.Enqueue(s);
        return new NetworkStream(s, ownsSocket: true);
    }

    private WorkspaceConfig Config() => new()
    {
        Name = "w", ImageDigest = "sha256:00", BaselinePath = "/b", Hostname = "w", Profile = "tiny", ImageEnv = ["PATH=/usr/bin:/bin"],
    };

    [Fact]
    public async Task A_reset_connection_is_followed_by_a_reattach_and_the_workload_runs_once()
    {
        string starts = Path.Combine(_tmp.Path, "starts"), go = Path.Combine(_tmp.Path, "go");
        string cmd = $"echo start >> {starts}; while [ ! -e {go} ]; do sleep 0.05; done; echo \"starts $(wc -l < {starts})\"; exit 3";
        var log = new ConcurrentQueue<string>();
        var agent = new AgentClient(ConnectAsync);
        var workload = WorkloadRunner.RunWorkloadAsync(agent, Config(), cmd, log.Enqueue, CancellationToken.None);

        await Poll.UntilAsync(() => File.Exists(starts), TimeSpan.FromSeconds(30), "the workload to start");
        Assert.True(_sockets.TryPeek(out var first));
        first.Shutdown(SocketShutdown.Both); // what a capture's device unplug does to every vsock connection
        await Poll.UntilAsync(() => _sockets.Count >= 2, TimeSpan.FromSeconds(30), "the host to re-attach");
        Assert.False(workload.IsCompleted);
        File.WriteAllText(go, "");

        var result = await workload.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(("exited", 3), (result.Status, result.ExitCode));
        Assert.Equal("starts 1\n", result.Stdout);
        Assert.Single(File.ReadAllLines(starts));
        Assert.True(_connects >= 3, $"connects {_connects}"); // attached, refused once, re-attached
        Assert.Contains(log, l => l.Contains("re-attaching", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Two_requests_with_one_job_id_share_one_process_and_one_result()
    {
        string starts = Path.Combine(_tmp.Path, "starts2");
        var request = new ExecRequest { Argv = ["sh", "-c", $"echo x >> {starts}; sleep 0.3; echo $$"], Env = ["PATH=/usr/bin:/bin"], JobId = "j" };
        var client = new AgentClient(async ct =>
        {
            var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            await s.ConnectAsync(new UnixDomainSocketEndPoint(_path), ct);
            return new NetworkStream(s, ownsSocket: true);
        });
        var a = client.ExecAsync(request);
        await Poll.UntilAsync(() => File.Exists(starts), TimeSpan.FromSeconds(30), "the job to start");
        var b = client.ExecAsync(request);
        var results = await Task.WhenAll(a, b);
        Assert.Equal(results[0].Stdout, results[1].Stdout);
        Assert.Single(File.ReadAllLines(starts));
        // Once it has ended, a later request still gets the kept result and starts nothing.
        var later = await client.ExecAsync(request);
        Assert.Equal(results[0].Stdout, later.Stdout);
        Assert.Single(File.ReadAllLines(starts));
    }
}

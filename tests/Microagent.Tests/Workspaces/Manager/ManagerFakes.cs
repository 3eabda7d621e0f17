using System.Collections.Concurrent;
using Microagent.Errors;
using Microagent.Workspaces;
using Microagent.Workspaces.Manager;

namespace Microagent.Tests.Workspaces.Manager;

/// <summary>
/// A process table of pretend processes: the only fake the manager needs, since real supervisors and QEMU cannot run
/// in a unit test. A process is alive until <see cref="Kill"/> or <see cref="Exit"/>; waits never block.
/// </summary>
internal sealed class FakeProcessTable : IProcessTable
{
    private readonly ConcurrentDictionary<int, (long Start, string Cmd, bool Alive)> _procs = new();

    public List<int> Killed { get; } = [];

    public void Add(int pid, string cmd = "microagent __supervise", long start = 1000) => _procs[pid] = (start, cmd, true);

    public void AddQemu(int pid, WorkspaceStore store) =>
        Add(pid, $"qemu-system-x86_64 -M pc -drive file={store.Dir}/root.qcow2 -chardev socket,path={store.Dir}/vhost-user.sock");

    public void Exit(int pid) { if (_procs.TryGetValue(pid, out var p)) _procs[pid] = p with { Alive = false }; }

    public long? StartTime(int pid) => _procs.TryGetValue(pid, out var p) && p.Alive ? p.Start : null;

    public bool IsAlive(int? pid, long? startTime = null) =>
        pid is { } id && _procs.TryGetValue(id, out var p) && p.Alive && (startTime is null || startTime == p.Start);

    public void Kill(int pid)
    {
        lock (Killed) Killed.Add(pid);
        Exit(pid);
    }

    /// <summary>Gone: true at once; alive: false at once, as if <paramref name="limit"/> had passed.</summary>
    public Task<bool> WaitForExitAsync(int pid, long? startTime, TimeSpan limit, CancellationToken ct) => Task.FromResult(!IsAlive(pid, startTime));

    public IEnumerable<int> AllPids() => _procs.Where(p => p.Value.Alive).Select(p => p.Key).Order().ToList();

    public string CommandLine(int pid) => _procs.TryGetValue(pid, out var p) && p.Alive ? p.Cmd : "";
}

/// <summary>Spawns nothing: registers a pretend supervisor and lets the test act as it (write state, die) inside the spawn.</summary>
internal sealed class FakeSpawner(FakeProcessTable processes, int pid, Action<WorkspaceStore, int>? asSupervisor = null) : ISupervisorSpawner
{
    public int Spawned { get; private set; }
    public Exception? Failure { get; init; }

    public SupervisorProcess Spawn(string executable, WorkspaceStore store)
    {
        if (Failure is not null) throw Failure;
        Spawned++;
        processes.Add(pid);
        asSupervisor?.Invoke(store, pid);
        return new SupervisorProcess(pid, 1000);
    }
}

/// <summary>A control socket that answers with <see cref="Answer"/>, or does not answer when it is null.</summary>
internal sealed class FakeControlClient : IControlClient
{
    public List<ControlRequest> Requests { get; } = [];
    public Func<ControlRequest, ControlResponse>? Answer { get; set; }

    public Task<ControlResponse> SendAsync(string socketPath, ControlRequest request, CancellationToken ct)
    {
        lock (Requests) Requests.Add(request);
        return Answer is { } a ? Task.FromResult(a(request)) : throw MicroagentException.Transient($"the supervisor does not answer on {socketPath}");
    }
}

/// <summary>Records progress synchronously (unlike <see cref="Progress{T}"/>) and lets the test react to a message.</summary>
internal sealed class RecordingProgress(Action<string>? onReport = null) : IProgress<string>
{
    public List<string> Messages { get; } = [];

    public void Report(string value)
    {
        Messages.Add(value);
        onReport?.Invoke(value);
    }
}

/// <summary>A temporary state dir with helpers to lay out a workspace as create would, without an image or a disk tool.</summary>
internal sealed class TempState : IDisposable
{
    public TempState() => Paths = new StatePaths(Path.Combine("/tmp", $"ma-ut-{Guid.NewGuid():N}"[..16]));

    public StatePaths Paths { get; }

    public void Dispose() { if (Directory.Exists(Paths.Root)) Directory.Delete(Paths.Root, true); }

    /// <summary>A prepared workspace (config, state, an empty disk file).</summary>
    public WorkspaceStore Prepared(string name, IReadOnlyList<string>? setup = null)
    {
        var store = new WorkspaceStore(Paths, name);
        StatePaths.EnsureDirectory(store.Dir);
        store.WriteConfig(new WorkspaceConfig
        {
            Name = name, ImageDigest = "sha256:" + new string('0', 64), BaselinePath = "/nonexistent/baseline.ext4",
            Hostname = name, Profile = "tiny", MemoryMiB = 256, Cpus = 1, SizeMiB = 512, Setup = setup ?? [],
            ImageEnv = ["PATH=/bin"], ImageWorkingDir = "/work", ImageUser = "1000",
        });
        store.Initialize("created for a test");
        File.WriteAllBytes(store.DiskPath, []);
        return store;
    }

    /// <summary>A workspace whose state says <paramref name="state"/> with supervisor <paramref name="supervisor"/>.</summary>
    public WorkspaceStore InState(string name, WorkspaceState state, int? supervisor, int? qemu = null)
    {
        var store = Prepared(name);
        store.Transition(WorkspaceState.Starting, "start requested", r => r with { SupervisorPid = supervisor, SupervisorStartTime = supervisor is null ? null : 1000 });
        WorkspaceState[] path = state switch
        {
            WorkspaceState.Starting => [],
            WorkspaceState.Running => [WorkspaceState.Running],
            WorkspaceState.Stopping => [WorkspaceState.Running, WorkspaceState.Stopping],
            WorkspaceState.Halted => [WorkspaceState.Running, WorkspaceState.Stopping, WorkspaceState.Halted],
            _ => [state],
        };
        foreach (var s in path) store.Transition(s, $"{s.WireName()} for a test");
        if (qemu is not null) store.Update(r => r with { QemuPid = qemu });
        return store;
    }

    public WorkspaceManager Manager(FakeProcessTable processes, ISupervisorSpawner spawner, IControlClient control, TimeSpan? startTimeout = null) =>
        new(Paths, new WorkspaceManagerOptions { SupervisorExecutable = "/nonexistent/microagent", LockWait = TimeSpan.FromSeconds(5) },
            processes, spawner, control, startTimeout ?? TimeSpan.FromMinutes(5));
}

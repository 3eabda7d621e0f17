using System.Diagnostics;

namespace Microagent.Workspaces.Manager;

/// <summary>
/// The process table as the manager sees it (liveness robust to pid reuse, SIGKILL, waits, the QEMU scan).
/// The real one is <see cref="SystemProcessTable"/> over <c>/proc</c>; unit tests fake it.
/// </summary>
internal interface IProcessTable
{
    /// <summary>Start time of <paramref name="pid"/> (clock ticks since boot); null when gone.</summary>
    long? StartTime(int pid);
    /// <summary>Running (not a zombie) and, when <paramref name="startTime"/> is given, the same process.</summary>
    bool IsAlive(int? pid, long? startTime = null);
    /// <summary>SIGKILL, ignoring a process that is already gone.</summary>
    void Kill(int pid);
    /// <summary>Waits until <paramref name="pid"/> is gone or <paramref name="limit"/> passes; true when gone.</summary>
    Task<bool> WaitForExitAsync(int pid, long? startTime, TimeSpan limit, CancellationToken ct);
    /// <summary>Every pid now.</summary>
    IEnumerable<int> AllPids();
    /// <summary>Command line joined with spaces; empty when unreadable.</summary>
    string CommandLine(int pid);
}

/// <summary>A spawned supervisor: its pid and start time (null when it was already gone when looked at).</summary>
internal readonly record struct SupervisorProcess(int Pid, long? StartTime);

/// <summary>Starts the detached supervisor of a workspace (<c>microagent __supervise NAME --state-dir ROOT</c>).</summary>
internal interface ISupervisorSpawner
{
    /// <summary>
    /// Starts it and returns at once. Throws <see cref="IOException"/>, <see cref="System.ComponentModel.Win32Exception"/>
    /// or <see cref="InvalidOperationException"/> when it cannot be started.
    /// </summary>
    SupervisorProcess Spawn(string executable, WorkspaceStore store);
}

/// <summary>Requests to a supervisor's control socket. The real one is <see cref="SocketControlClient"/>.</summary>
internal interface IControlClient
{
    /// <summary>One request, one response; <see cref="Errors.MicroagentException"/> (transient) when the supervisor does not answer.</summary>
    Task<ControlResponse> SendAsync(string socketPath, ControlRequest request, CancellationToken ct);
}

/// <summary>The control requests the manager sends: every <see cref="ControlRequest"/> it builds is built here.</summary>
internal static class ControlRequests
{
    public static ControlRequest Halt(TimeSpan window) => new() { Type = ControlVerb.Halt, TimeoutMs = (long)window.TotalMilliseconds };
    public static ControlRequest Kill(TimeSpan window) => new() { Type = ControlVerb.Kill, TimeoutMs = (long)window.TotalMilliseconds };
    public static ControlRequest MediationStatus() => new() { Type = ControlVerb.MediationStatus };
    public static ControlRequest SeverMediation() => new() { Type = ControlVerb.SeverMediation };
    public static ControlRequest NetworkStatus() => new() { Type = ControlVerb.NetworkStatus };
    public static ControlRequest SeverNetwork() => new() { Type = ControlVerb.SeverNetwork };
    public static ControlRequest Stats() => new() { Type = ControlVerb.Stats };
    public static ControlRequest ConsoleStatus() => new() { Type = ControlVerb.ConsoleStatus };
    public static ControlRequest SeverConsole() => new() { Type = ControlVerb.SeverConsole };
}

/// <summary><see cref="IProcessTable"/> over <c>/proc</c> (<see cref="ProcessTable"/>).</summary>
internal sealed class SystemProcessTable : IProcessTable
{
    public static SystemProcessTable Instance { get; } = new();

    public long? StartTime(int pid) => ProcessTable.StartTime(pid);
    public bool IsAlive(int? pid, long? startTime = null) => ProcessTable.IsAlive(pid, startTime);
    public void Kill(int pid) => ProcessTable.Kill(pid);
    public Task<bool> WaitForExitAsync(int pid, long? startTime, TimeSpan limit, CancellationToken ct) => ProcessTable.WaitForExitAsync(pid, startTime, limit, ct);
    public IEnumerable<int> AllPids() => ProcessTable.AllPids();
    public string CommandLine(int pid) => ProcessTable.CommandLine(pid);
}

/// <summary><see cref="IControlClient"/> over the unix control socket (<see cref="ControlClient"/>).</summary>
internal sealed class SocketControlClient : IControlClient
{
    public static SocketControlClient Instance { get; } = new();

    public Task<ControlResponse> SendAsync(string socketPath, ControlRequest request, CancellationToken ct) => ControlClient.SendAsync(socketPath, request, ct);
}

/// <summary>
/// Spawns the supervisor in a new session with stdio on its log, so it outlives this process and holds none of its
/// pipes. The pid returned is the supervisor's: <c>sh</c> and <c>setsid</c> exec into it (a child is no process-group
/// leader, so <c>setsid</c> does not fork).
/// </summary>
internal sealed class DetachedSupervisorSpawner : ISupervisorSpawner
{
    public static DetachedSupervisorSpawner Instance { get; } = new();

    public SupervisorProcess Spawn(string executable, WorkspaceStore store)
    {
        var psi = new ProcessStartInfo("/bin/sh") { UseShellExecute = false };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add("exec setsid \"$0\" \"$@\" </dev/null >>\"$MICROAGENT_SUPERVISOR_LOG\" 2>&1");
        psi.ArgumentList.Add(executable);
        psi.ArgumentList.Add(WorkspaceSupervisor.HiddenVerb);
        psi.ArgumentList.Add(store.Name);
        psi.ArgumentList.Add("--state-dir");
        psi.ArgumentList.Add(store.Paths.Root);
        psi.Environment["MICROAGENT_SUPERVISOR_LOG"] = store.SupervisorLogPath;
        using (File.Open(store.SupervisorLogPath, new FileStreamOptions { Mode = FileMode.Append, Access = FileAccess.Write, UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite })) { }
        using var p = Process.Start(psi) ?? throw new InvalidOperationException("Process.Start returned null");
        return new SupervisorProcess(p.Id, ProcessTable.StartTime(p.Id));
    }
}

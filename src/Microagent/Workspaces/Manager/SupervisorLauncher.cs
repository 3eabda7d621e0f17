using System.Diagnostics;
using System.Net.Sockets;
using Microagent.Agent;
using Microagent.Errors;
using Microagent.Tools;

namespace Microagent.Workspaces.Manager;

/// <summary>
/// Starts a workspace's supervisor and waits until its guest serves exec; stops a supervisor through its control socket,
/// by signal when it does not answer.
/// <para>
/// Who writes <c>state.json</c> (docs/ARCHITECTURE.md "Who writes state"): this process (CLI, MCP server or a .NET
/// program) writes <c>prepared</c> at create and <c>starting</c> just before it spawns the supervisor. From its start until
/// it exits the supervisor writes everything, its own pid and start time first. This process writes again only the
/// fallbacks of <see cref="Reconciler"/> and of this class (failed, stopped), always holding the workspace lock and only
/// once the supervisor is dead (never spawned, died, or killed here). It never read-modify-writes state.json while a
/// supervisor it spawned may be alive: it waits on the pid the spawn returned instead.
/// </para>
/// </summary>
internal sealed class SupervisorLauncher(
    WorkspaceManagerOptions options, IProcessTable processes, ISupervisorSpawner spawner, IControlClient control, Reconciler reconciler,
    TimeSpan startTimeout)
{
    /// <summary>The guest's boot timeout plus time for boot assets and setup.</summary>
    public static readonly TimeSpan DefaultStartTimeout = WorkspaceVm.BootTimeout + TimeSpan.FromMinutes(2);

    private static readonly TimeSpan KillWait = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(25);

    /// <summary>
    /// The supervisor executable: <paramref name="forThisBoot"/> (<see cref="StartOptions.SupervisorExecutable"/>, checked by
    /// <see cref="BootChoices"/>), the configured one, <c>$MICROAGENT_BIN</c>, this process when it is microagent, the
    /// package's native <c>microagent</c> (<see cref="NativeBinaries"/>), or <c>microagent</c> beside the agent.
    /// </summary>
    public string LocateExecutable(string? forThisBoot = null)
    {
        if (forThisBoot is not null) return forThisBoot;
        if (options.SupervisorExecutable is { } configured) return configured;
        if (Environment.GetEnvironmentVariable(WorkspaceManager.BinaryVariable) is { Length: > 0 } env) return env;
        if (Environment.ProcessPath is { } self && Path.GetFileName(self) == "microagent") return self;
        if (NativeBinaries.Find("microagent") is { } packaged) return packaged;
        try
        {
            string beside = Path.Combine(Path.GetDirectoryName(AgentLocator.Find())!, "microagent");
            if (File.Exists(beside)) return beside;
        }
        catch (MicroagentException) { }
        throw MicroagentException.NotFound("the microagent executable (which runs workspace supervisors) was not found",
            $"reference the Microagent package (it carries the executable), set {WorkspaceManager.BinaryVariable} to bin/microagent, or WorkspaceManagerOptions.SupervisorExecutable");
    }

    /// <summary>
    /// Caller holds the lock and checked that the workspace may start. Records the boot and <c>starting</c>, spawns the
    /// supervisor (<paramref name="executable"/>, else <see cref="LocateExecutable"/>'s) and returns once the guest serves exec. Failure: <see cref="WorkspaceFailedException"/> (state failed).
    /// Cancellation: the supervisor and VM are killed, the workspace and its disk stay (state stopped), and
    /// <see cref="WorkspaceInterruptedException"/> says so.
    /// </summary>
    public async Task StartAsync(WorkspaceStore store, WorkspaceConfig config, BootRecord boot, IProgress<string>? progress, CancellationToken ct,
        string? executable = null)
    {
        string exe = LocateExecutable(executable);
        store.WriteBoot(boot);
        if (config.Exec is not null) File.Delete(store.ResultPath);
        Reconciler.DeleteRuntimeFiles(store);
        store.ReadEvents(0, out long eventsOffset);
        store.Transition(WorkspaceState.Starting, "start requested", r => r with { Boot = boot, LastActivity = null });

        progress?.Report("spawning the supervisor");
        SupervisorProcess supervisor;
        try { supervisor = spawner.Spawn(exe, store); }
        catch (Exception e) when (e is IOException or System.ComponentModel.Win32Exception or InvalidOperationException)
        {
            store.Transition(WorkspaceState.Failed, $"cannot start the supervisor: {e.Message}");
            throw MicroagentException.Permanent($"cannot start the supervisor ({exe}): {e.Message}", $"check {WorkspaceManager.BinaryVariable} or run `make build`", e);
        }

        try
        {
            await WaitForReadyAsync(store, config, supervisor, eventsOffset, progress, ct).ConfigureAwait(false);
        }
        catch (OperationCanceledException e)
        {
            await KillAsync(store, supervisor.Pid, supervisor.StartTime).ConfigureAwait(false);
            var after = store.ReadState();
            if (after.State.IsActive()) after = Reconciler.ForceState(store, WorkspaceState.Stopped, "start was interrupted; the VM was killed; the disk is kept");
            throw new WorkspaceInterruptedException(store.Name, after.State,
                $"start of workspace '{store.Name}' was interrupted: its supervisor and VM were killed; the workspace and its disk are kept ({after.State.WireName()})",
                e, e.CancellationToken);
        }
    }

    private async Task WaitForReadyAsync(WorkspaceStore store, WorkspaceConfig config, SupervisorProcess supervisor, long eventsOffset,
        IProgress<string>? progress, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        progress?.Report("booting the VM");
        bool guestReported = false;
        while (true)
        {
            var events = store.ReadEvents(eventsOffset, out _);
            if (events.Any(e => e.State == WorkspaceState.Running))
            {
                progress?.Report("the guest serves exec");
                return;
            }
            var state = store.ReadState();
            if (!state.State.IsActive())
            {
                throw new WorkspaceFailedException(store.Name, $"workspace '{store.Name}' did not start: {state.Detail}",
                    $"see `microagent logs {store.Name}` (serial console) and {store.SupervisorLogPath}");
            }
            if (state.GuestReady && !guestReported)
            {
                guestReported = true;
                progress?.Report(state.Boot?.BootMs is { } ms ? $"guest ready in {ms} ms" : "guest ready");
                if (config.Setup.Count > 0 && !state.SetupCompleted)
                    progress?.Report($"running setup ({config.Setup.Count} command{(config.Setup.Count == 1 ? "" : "s")})");
            }
            if (!processes.IsAlive(supervisor.Pid, supervisor.StartTime))
            {
                var after = reconciler.Reconcile(store, supervisor.Pid);
                throw new WorkspaceFailedException(store.Name, $"workspace '{store.Name}' did not start: {after.Detail}",
                    $"supervisor log tail:\n{WorkspaceVm.Tail(store.SupervisorLogPath, 10)}");
            }
            if (clock.Elapsed > startTimeout)
            {
                await KillAsync(store, supervisor.Pid, supervisor.StartTime).ConfigureAwait(false);
                Reconciler.ForceState(store, WorkspaceState.Failed, $"the guest did not become ready within {startTimeout.TotalSeconds:0} s");
                throw new WorkspaceFailedException(store.Name, $"workspace '{store.Name}' did not become ready in time",
                    $"serial log tail:\n{WorkspaceVm.Tail(store.SerialLogPath)}");
            }
            await Task.Delay(PollInterval, ct).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Caller holds the lock; the workspace is active. Asks the supervisor to halt (power the guest off within
    /// <paramref name="window"/>) or kill; when it does not answer or does not finish, kills it and its VM by signal and
    /// records the outcome (kill: stopped; halt: failed).
    /// </summary>
    public Task StopAsync(WorkspaceStore store, WorkspaceStateRecord state, bool kill, TimeSpan window, CancellationToken ct) => StopAsync(store, state, kill, window, null, ct);

    /// <summary>As above; <paramref name="reason"/> goes into the recorded detail.</summary>
    public async Task StopAsync(WorkspaceStore store, WorkspaceStateRecord state, bool kill, TimeSpan window, string? reason, CancellationToken ct)
    {
        int? pid = state.SupervisorPid;
        long? start = state.SupervisorStartTime;
        bool asked = false;
        try
        {
            var request = kill ? ControlRequests.Kill(window) : ControlRequests.Halt(window);
            request.Reason = reason;
            asked = (await control.SendAsync(store.ControlSocketPath, request, ct).ConfigureAwait(false)).Ok;
        }
        catch (Exception e) when (e is MicroagentException or IOException or SocketException) { }
        if (asked && pid is { } p && await processes.WaitForExitAsync(p, start, window + TimeSpan.FromSeconds(15), ct).ConfigureAwait(false))
            return;
        // The supervisor did not answer or did not finish: stop it and its VM by signal.
        if (pid is { } sp && processes.IsAlive(sp, start))
        {
            processes.Kill(sp);
            await processes.WaitForExitAsync(sp, start, KillWait, ct).ConfigureAwait(false);
        }
        reconciler.KillStrayQemu(store);
        Reconciler.DeleteRuntimeFiles(store);
        if (store.ReadState().State.IsActive())
            Reconciler.ForceState(store, kill ? WorkspaceState.Stopped : WorkspaceState.Failed,
                (kill ? "killed (the supervisor did not respond and was killed)" : "the supervisor did not complete the halt and was killed")
                + (reason is { Length: > 0 } ? $"; reason: {reason}" : ""));
    }

    /// <summary>Kills a supervisor this process spawned and whatever QEMU it left; waits for it, whatever the caller's token says.</summary>
    private async Task KillAsync(WorkspaceStore store, int pid, long? startTime)
    {
        processes.Kill(pid);
        await processes.WaitForExitAsync(pid, startTime, KillWait, CancellationToken.None).ConfigureAwait(false);
        reconciler.KillStrayQemu(store);
    }
}

using Microagent.Errors;
using Microagent.Tools;

namespace Microagent.Workspaces.Manager;

/// <summary>
/// Makes state.json tell the truth when a supervisor is gone, and reaps what dead supervisors left behind (gc).
/// Invariant: it writes state only for a workspace whose supervisor is dead, and only while holding the workspace's
/// lock (docs/ARCHITECTURE.md "Who writes state"); a live supervisor's workspace is never touched.
/// </summary>
internal sealed class Reconciler(StatePaths paths, IProcessTable processes)
{
    /// <summary>
    /// Caller holds the lock. An active state whose supervisor is gone becomes failed (or stopped when it was stopping),
    /// with the reason; its stray QEMU is killed and its sockets removed. <paramref name="spawned"/> names a supervisor
    /// that this process started and that may have died before recording its own pid.
    /// </summary>
    public WorkspaceStateRecord Reconcile(WorkspaceStore store, int? spawned = null)
    {
        var state = store.ReadState();
        if (!state.State.IsActive() || LeftAlone(state) || processes.IsAlive(state.SupervisorPid, state.SupervisorStartTime)) return state;
        bool qemuKilled = KillStrayQemu(store);
        DeleteRuntimeFiles(store);
        string who = (state.SupervisorPid ?? spawned) is { } p ? $"pid {p}" : "not recorded";
        string detail = $"the supervisor ({who}) died unexpectedly{(qemuKilled ? "; its QEMU was killed" : "; its VM is gone")}";
        if (HonourFence(store, state, detail) is { } fenced) return fenced;
        return state.State == WorkspaceState.Stopping
            ? ForceState(store, WorkspaceState.Stopped, detail + " while stopping")
            : ForceState(store, WorkspaceState.Failed, detail);
    }

    /// <summary>Reconciles only if the lock is free right now (readers never wait); returns the state either way.</summary>
    public WorkspaceStateRecord TryReconcile(WorkspaceStore store)
    {
        var state = store.ReadState();
        if (!state.State.IsActive() || LeftAlone(state) || processes.IsAlive(state.SupervisorPid, state.SupervisorStartTime)) return state;
        using var held = FileLock.TryAcquire(store.LockPath);
        return held is null ? state : Reconcile(store);
    }

    /// <summary>A quarantined workspace whose supervisor left cleanly (pids cleared): nothing runs, nothing to reconcile.</summary>
    private static bool LeftAlone(WorkspaceStateRecord state) =>
        state.State == WorkspaceState.Quarantined && state.SupervisorPid is null && state.QemuPid is null;

    /// <summary>
    /// The supervisor is dead (its QEMU killed) and a quarantine had begun (docs/ARCHITECTURE.md "Quarantine"): the fence holds. The
    /// workspace is (or becomes, when the supervisor died between the fence and the state) quarantined with its pids cleared, and the
    /// phases that were running are marked interrupted. Null when there is no fence.
    /// </summary>
    private static WorkspaceStateRecord? HonourFence(WorkspaceStore store, WorkspaceStateRecord state, string detail)
    {
        Containment.ContainmentRecord? record;
        try { record = store.ReadContainment(); }
        catch (MicroagentException) { record = null; }
        bool fenced = record is { Fenced: true };
        if (state.State != WorkspaceState.Quarantined && !(fenced && WorkspaceStateMachine.CanTransition(state.State, WorkspaceState.Quarantined))) return null;
        string why = $"{detail} during the quarantine; `microagent quarantine {store.Name} --reason TEXT` completes it";
        if (fenced) store.UpdateContainment(r => r!.Interrupt(why, DateTimeOffset.UtcNow));
        static WorkspaceStateRecord Clear(WorkspaceStateRecord r) =>
            r with { SupervisorPid = null, SupervisorStartTime = null, QemuPid = null, GuestReady = false, ExecReady = false };
        return state.State == WorkspaceState.Quarantined
            ? store.Update(Clear)
            : store.Transition(WorkspaceState.Quarantined, $"quarantined: {record!.Reason} ({why})", Clear);
    }

    /// <summary>Caller holds the lock and the supervisor is dead: records <paramref name="to"/> by the state machine's fallback rules (<see cref="WorkspaceStore.Settle"/>).</summary>
    public static WorkspaceStateRecord ForceState(WorkspaceStore store, WorkspaceState to, string detail) => store.Settle(to, detail);

    /// <summary>Kills QEMU processes whose command line names this workspace's directory; true when one was found.</summary>
    public bool KillStrayQemu(WorkspaceStore store)
    {
        bool found = false;
        foreach (int pid in QemuPidsOf(store).ToList())
        {
            processes.Kill(pid);
            found = true;
        }
        return found;
    }

    /// <summary>Removes the sockets a live supervisor would own.</summary>
    public static List<string> DeleteRuntimeFiles(WorkspaceStore store)
    {
        var files = store.RuntimeFiles().Where(File.Exists).ToList();
        foreach (string f in files) File.Delete(f);
        return files;
    }

    /// <summary>Reaps what is orphaned (see <see cref="WorkspaceManager.GcAsync"/>). Workspaces another command holds are skipped.</summary>
    public GcReport Gc(CancellationToken ct)
    {
        var reconciled = new List<string>();
        var killed = new List<int>();
        var sockets = new List<string>();
        var runs = new List<string>();
        if (!Directory.Exists(paths.Workspaces)) return new GcReport(reconciled, killed, sockets, runs);
        foreach (string dir in Directory.EnumerateDirectories(paths.Workspaces).ToList())
        {
            ct.ThrowIfCancellationRequested();
            WorkspaceStore store;
            try { store = new WorkspaceStore(paths, Path.GetFileName(dir)); }
            catch (WorkspaceSpecException) { continue; }
            using var held = FileLock.TryAcquire(store.LockPath);
            if (held is null) continue; // another command is working on it
            if (!store.Exists)
            {
                // A run killed before it wrote its config, or leftovers: only when nothing has touched it for a minute.
                if (Directory.GetLastWriteTimeUtc(dir) < DateTime.UtcNow.AddMinutes(-1) && !QemuPidsOf(store).Any())
                {
                    TryDeleteDir(dir);
                    runs.Add(store.Name);
                }
                continue;
            }
            var before = store.ReadState();
            var present = store.RuntimeFiles().Where(File.Exists).ToList();
            var after = Reconcile(store);
            if (before.State != after.State) reconciled.Add(store.Name);
            if (!after.State.IsActive())
            {
                // Those a reconcile just removed count too.
                sockets.AddRange(present.Union(DeleteRuntimeFiles(store)));
                if (store.Name.StartsWith("run-", StringComparison.Ordinal) && ReadBootOrNull(store)?.Ephemeral == true)
                {
                    TryDeleteDir(dir);
                    runs.Add(store.Name);
                }
            }
        }
        killed.AddRange(KillUnownedQemu());
        // Lock files are never unlinked here: a process that already opened one would lock a deleted inode while
        // a newcomer locks a fresh file, and two holders would exist. They are empty files; leaving them is harmless.
        return new GcReport(reconciled, killed, sockets, runs);
    }

    /// <summary>Removes a directory tree, ignoring one that is gone or cannot be removed (callers check what is left).</summary>
    public static void TryDeleteDir(string dir)
    {
        try { Directory.Delete(dir, recursive: true); }
        catch (DirectoryNotFoundException) { }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }

    /// <summary>QEMU under our workspaces whose workspace does not own it (supervisor gone, or no such workspace).</summary>
    private List<int> KillUnownedQemu()
    {
        var killed = new List<int>();
        string prefix = paths.Workspaces + "/";
        foreach (int pid in processes.AllPids().ToList())
        {
            string cmd = processes.CommandLine(pid);
            if (!cmd.Contains("qemu-system", StringComparison.Ordinal)) continue;
            int at = cmd.IndexOf(prefix, StringComparison.Ordinal);
            if (at < 0) continue;
            string rest = cmd[(at + prefix.Length)..];
            string name = rest[..Math.Max(0, rest.IndexOf('/'))];
            bool owned = false;
            try
            {
                var store = new WorkspaceStore(paths, name);
                if (store.Exists && store.ReadState() is { } s && s.State.IsActive() && s.QemuPid == pid
                    && processes.IsAlive(s.SupervisorPid, s.SupervisorStartTime)) owned = true;
                // A workspace being started (lock held) may not have recorded its QEMU pid yet.
                if (!owned && FileLock.TryAcquire(store.LockPath) is { } l) l.Dispose(); else owned = true;
            }
            catch (MicroagentException) { }
            if (owned) continue;
            processes.Kill(pid);
            killed.Add(pid);
        }
        return killed;
    }

    private IEnumerable<int> QemuPidsOf(WorkspaceStore store)
    {
        string marker = store.Dir + "/";
        foreach (int pid in processes.AllPids())
        {
            string cmd = processes.CommandLine(pid);
            if (cmd.Contains("qemu-system", StringComparison.Ordinal) && cmd.Contains(marker, StringComparison.Ordinal)) yield return pid;
        }
    }

    private static BootRecord? ReadBootOrNull(WorkspaceStore store)
    {
        try { return File.Exists(store.BootPath) ? store.ReadBoot() : null; }
        catch (MicroagentException) { return null; }
    }
}

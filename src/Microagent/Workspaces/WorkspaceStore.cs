using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microagent.Errors;

namespace Microagent.Workspaces;

/// <summary>Workspace name rules: what may be a directory name and a hostname label, nothing that escapes the state dir.</summary>
internal static partial class WorkspaceName
{
    /// <summary>Longest name (unix socket paths under the workspace directory are limited to 107 bytes).</summary>
    public const int MaxLength = 48;

    /// <summary>Throws <see cref="WorkspaceSpecException"/> with the reason when <paramref name="name"/> is not acceptable.</summary>
    public static string Validate(string? name)
    {
        if (string.IsNullOrEmpty(name)) throw new WorkspaceSpecException("a workspace name is required", "example: microagent create research");
        if (name.Contains('\0')) throw new WorkspaceSpecException("workspace names must not contain NUL");
        if (name.Contains('/')) throw new WorkspaceSpecException($"workspace name '{name}' contains '/'", "names are a single path component: letters, digits, '.', '_', '-'");
        if (name.Contains("..")) throw new WorkspaceSpecException($"workspace name '{name}' contains '..'", "names are a single path component: letters, digits, '.', '_', '-'");
        if (name.Length > MaxLength) throw new WorkspaceSpecException($"workspace name '{name}' is longer than {MaxLength} characters");
        if (!Pattern().IsMatch(name))
            throw new WorkspaceSpecException($"workspace name '{name}' is invalid", "use letters, digits, '.', '_' and '-', starting with a letter or digit");
        return name;
    }

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._-]*$")]
    private static partial Regex Pattern();
}

/// <summary>
/// One workspace's directory (names in <see cref="WorkspaceLayout"/>): <c>config.json</c>, <c>state.json</c> (atomic, 0600),
/// <c>events.jsonl</c> (append-only, 0600), <c>result.json</c>, the disk, logs and sockets.
/// Invariants: every state change goes through <see cref="Transition"/> or <see cref="Settle"/>, which check it with
/// <see cref="WorkspaceStateMachine"/> and append the matching event; every read-modify-write of <c>state.json</c>
/// (<see cref="Transition"/>, <see cref="Settle"/>, <see cref="Update"/>) holds an exclusive flock on <c>state.lock</c> from
/// the read to the atomic rename (and the event append), so a writer in one process never loses another process's write.
/// Who writes <c>state.json</c> (docs/ARCHITECTURE.md "Who writes state"):
/// <list type="bullet">
/// <item>CLI / library (<see cref="WorkspaceManager"/>): <c>prepared</c> at create; <c>starting</c> before spawning the
/// supervisor (never after: it waits on the pid the spawn returned); the fallbacks of reconcile, an interrupted start or a
/// supervisor that does not answer, only under the workspace lock and only once the supervisor is dead.</item>
/// <item>The supervisor (<see cref="WorkspaceSupervisor"/>): everything from its start until it exits (its own pid and start
/// time first, boot facts, <c>running</c>, activity, <c>stopping</c> and the final state).</item>
/// </list>
/// </summary>
internal sealed class WorkspaceStore
{
    /// <summary>Longest wait for the state lock: a holder only reads, changes a record and renames a file.</summary>
    private static readonly TimeSpan StateLockWait = TimeSpan.FromSeconds(10);

    public WorkspaceStore(StatePaths paths, string name)
    {
        Name = WorkspaceName.Validate(name);
        Paths = paths;
        Layout = new WorkspaceLayout(Path.Combine(paths.Workspaces, name));
        LockPath = Path.Combine(paths.Root, "locks", name + ".lock");
    }

    public string Name { get; }
    public StatePaths Paths { get; }
    /// <summary>Every file and socket name of the directory.</summary>
    public WorkspaceLayout Layout { get; }
    public string Dir => Layout.Dir;
    /// <summary>The workspace lock (held by CLI/library verbs; outside the directory so that delete can hold it).</summary>
    public string LockPath { get; }
    public string ConfigPath => Layout.Config;
    public string StatePath => Layout.State;
    public string EventsPath => Layout.Events;
    public string ResultPath => Layout.Result;
    public string BootPath => Layout.Boot;
    public string DiskPath => Layout.Disk;
    public string SerialLogPath => Layout.SerialLog;
    public string SupervisorLogPath => Layout.SupervisorLog;
    public string EgressAuditPath => Layout.EgressAudit;
    public string ControlSocketPath => Layout.ControlSocket;
    public string HybridSocketPath => Layout.HybridSocket;

    public bool Exists => File.Exists(ConfigPath) && File.Exists(StatePath);

    /// <summary>Sockets a live supervisor owns; stale once it is gone.</summary>
    public IEnumerable<string> RuntimeFiles() => Layout.RuntimeFiles();

    public WorkspaceConfig ReadConfig() => Read(ConfigPath, WorkspaceJson.Default.WorkspaceConfig);

    /// <summary>The config at <paramref name="configPath"/>, or null when there is none (for scans over every workspace).</summary>
    internal static WorkspaceConfig? TryReadConfig(string configPath) =>
        File.Exists(configPath) ? JsonSerializer.Deserialize(File.ReadAllBytes(configPath), WorkspaceJson.Default.WorkspaceConfig) : null;

    public void WriteConfig(WorkspaceConfig config) =>
        StatePaths.WriteAtomic(ConfigPath, JsonSerializer.SerializeToUtf8Bytes(config, WorkspaceJson.Default.WorkspaceConfig));

    public WorkspaceStateRecord ReadState() => Read(StatePath, WorkspaceJson.Default.WorkspaceStateRecord);

    public void WriteState(WorkspaceStateRecord state) =>
        StatePaths.WriteAtomic(StatePath, JsonSerializer.SerializeToUtf8Bytes(state, WorkspaceJson.Default.WorkspaceStateRecord));

    /// <summary>Records the first state (prepared) and its event.</summary>
    public WorkspaceStateRecord Initialize(string detail)
    {
        var now = DateTimeOffset.UtcNow;
        var rec = new WorkspaceStateRecord { Name = Name, State = WorkspaceState.Prepared, Detail = detail, Since = now };
        WriteState(rec);
        AppendEvent(new WorkspaceEvent(Name, WorkspaceState.Prepared, null, detail, now));
        return rec;
    }

    /// <summary>Checks and writes a transition to <paramref name="to"/>, with optional other changes, and appends its event.</summary>
    public WorkspaceStateRecord Transition(WorkspaceState to, string? detail, Func<WorkspaceStateRecord, WorkspaceStateRecord>? change = null)
    {
        using var held = LockState();
        var current = ReadState();
        WorkspaceStateMachine.EnsureTransition(Name, current.State, to);
        return Apply(current, to, detail, change);
    }

    /// <summary>
    /// Brings the workspace to <paramref name="wanted"/> or, when that is not reachable from where it is now, to the fallback
    /// of <see cref="WorkspaceStateMachine.Settle"/>; appends the event. No-op (no event) when nothing changes.
    /// </summary>
    public WorkspaceStateRecord Settle(WorkspaceState wanted, string detail)
    {
        using var held = LockState();
        var current = ReadState();
        var to = WorkspaceStateMachine.Settle(current.State, wanted);
        return to == current.State ? current : Apply(current, to, detail, null);
    }

    /// <summary>Changes fields other than the state.</summary>
    public WorkspaceStateRecord Update(Func<WorkspaceStateRecord, WorkspaceStateRecord> change)
    {
        using var held = LockState();
        var next = change(ReadState());
        WriteState(next);
        return next;
    }

    /// <summary>The containment record (docs/ARCHITECTURE.md "Quarantine"); null when the workspace was never quarantined.</summary>
    public Containment.ContainmentRecord? ReadContainment() =>
        File.Exists(Layout.Containment) ? Read(Layout.Containment, WorkspaceJson.Default.ContainmentRecord) : null;

    /// <summary>
    /// Read-modify-write of the containment record under the state lock (its writers are the supervisor while it lives and this
    /// library once it is dead, like <c>state.json</c>; the library also records the console phase while it lives).
    /// </summary>
    public Containment.ContainmentRecord UpdateContainment(Func<Containment.ContainmentRecord?, Containment.ContainmentRecord> change)
    {
        using var held = LockState();
        var next = change(ReadContainment());
        StatePaths.WriteAtomic(Layout.Containment, JsonSerializer.SerializeToUtf8Bytes(next, WorkspaceJson.Default.ContainmentRecord));
        return next;
    }

    /// <summary>
    /// The fence and the state in one critical section: the record (fence done) is renamed into place first, then
    /// <paramref name="to"/> is recorded; a crash between the two leaves a fence that reconcile honours.
    /// </summary>
    public WorkspaceStateRecord Fence(Containment.ContainmentRecord record, WorkspaceState to, string detail)
    {
        using var held = LockState();
        StatePaths.WriteAtomic(Layout.Containment, JsonSerializer.SerializeToUtf8Bytes(record, WorkspaceJson.Default.ContainmentRecord));
        var current = ReadState();
        if (current.State == to) return current;
        WorkspaceStateMachine.EnsureTransition(Name, current.State, to);
        return Apply(current, to, detail, null);
    }

    private WorkspaceStateRecord Apply(WorkspaceStateRecord current, WorkspaceState to, string? detail, Func<WorkspaceStateRecord, WorkspaceStateRecord>? change)
    {
        var now = DateTimeOffset.UtcNow;
        var next = (change?.Invoke(current) ?? current) with { State = to, Previous = current.State, Detail = detail, Since = now };
        if (to != WorkspaceState.Paused) next = next with { PauseCause = null };
        if (!to.IsActive()) next = next with { SupervisorPid = null, SupervisorStartTime = null, QemuPid = null, GuestReady = false, ExecReady = false };
        WriteState(next);
        AppendEvent(new WorkspaceEvent(Name, to, current.State, detail, now));
        return next;
    }

    /// <summary>
    /// Takes the state lock (flock, released on dispose or process death). It never creates the directory: a workspace deleted
    /// meanwhile is <see cref="WorkspaceNotFoundException"/>.
    /// </summary>
    private FileStream LockState()
    {
        var deadline = DateTime.UtcNow + StateLockWait;
        int delayMs = 1;
        while (true)
        {
            try
            {
                return new FileStream(Layout.StateLock, new FileStreamOptions
                {
                    Mode = FileMode.OpenOrCreate, Access = FileAccess.ReadWrite, Share = FileShare.None,
                    UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
                });
            }
            catch (DirectoryNotFoundException) { throw new WorkspaceNotFoundException(Name); }
            catch (IOException) when (DateTime.UtcNow < deadline)
            {
                Thread.Sleep(delayMs); // waiting for another holder: the lock has no wait queue
                delayMs = Math.Min(delayMs * 2, 20);
            }
            catch (IOException e)
            {
                throw MicroagentException.Transient($"{Layout.StateLock} stayed locked for {StateLockWait.TotalSeconds:0} s: {e.Message}", "retry the command");
            }
        }
    }

    public void AppendEvent(WorkspaceEvent e)
    {
        byte[] line = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(e, WorkspaceJsonLine.Default.WorkspaceEvent) + "\n");
        using var fs = new FileStream(EventsPath, new FileStreamOptions
        {
            Mode = FileMode.Append, Access = FileAccess.Write, Share = FileShare.ReadWrite,
            UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
        });
        fs.Write(line);
    }

    public IReadOnlyList<WorkspaceEvent> ReadEvents(long fromOffset, out long endOffset)
    {
        var events = new List<WorkspaceEvent>();
        endOffset = fromOffset;
        if (!File.Exists(EventsPath)) return events;
        using var fs = new FileStream(EventsPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        fs.Seek(fromOffset, SeekOrigin.Begin);
        using var reader = new StreamReader(fs, Encoding.UTF8);
        string rest = reader.ReadToEnd();
        int consumed = 0;
        while (true)
        {
            int nl = rest.IndexOf('\n', consumed);
            if (nl < 0) break; // a line still being written
            string line = rest[consumed..nl];
            consumed = nl + 1;
            if (line.Length == 0) continue;
            try { if (JsonSerializer.Deserialize(line, WorkspaceJsonLine.Default.WorkspaceEvent) is { } e) events.Add(e); }
            catch (JsonException) { }
        }
        endOffset = fromOffset + Encoding.UTF8.GetByteCount(rest.AsSpan(0, consumed));
        return events;
    }

    public WorkloadResult? ReadResult() => File.Exists(ResultPath) ? Read(ResultPath, WorkspaceJson.Default.WorkloadResult) : null;

    public void WriteResult(WorkloadResult result) =>
        StatePaths.WriteAtomic(ResultPath, JsonSerializer.SerializeToUtf8Bytes(result, WorkspaceJson.Default.WorkloadResult));

    public BootRecord ReadBoot() => Read(BootPath, WorkspaceJson.Default.BootRecord);

    public void WriteBoot(BootRecord boot) =>
        StatePaths.WriteAtomic(BootPath, JsonSerializer.SerializeToUtf8Bytes(boot, WorkspaceJson.Default.BootRecord));

    private T Read<T>(string path, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> info)
    {
        try
        {
            return JsonSerializer.Deserialize(File.ReadAllBytes(path), info)
                ?? throw MicroagentException.Permanent($"{path} is empty", "delete the workspace and create it again");
        }
        catch (FileNotFoundException) { throw new WorkspaceNotFoundException(Name); }
        catch (DirectoryNotFoundException) { throw new WorkspaceNotFoundException(Name); }
        catch (JsonException e)
        {
            throw MicroagentException.Permanent($"{path} is corrupt: {e.Message}", "delete the workspace (`microagent delete NAME --force`) and create it again");
        }
    }
}

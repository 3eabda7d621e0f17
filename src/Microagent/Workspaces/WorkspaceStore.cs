using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microagent.Errors;

namespace Microagent.Workspaces;

/// <summary>Workspace name rules: what may be a directory name and a hostname label, nothing that escapes the state dir.</summary>
public static partial class WorkspaceName
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
/// One workspace's directory: <c>config.json</c>, <c>state.json</c> (atomic, 0600), <c>events.jsonl</c> (append-only, 0600),
/// <c>result.json</c>, the disk, logs and sockets. Invariant: every state change goes through <see cref="Transition"/>,
/// which checks it with <see cref="WorkspaceStateMachine"/> and appends the matching event.
/// </summary>
internal sealed class WorkspaceStore
{
    public WorkspaceStore(StatePaths paths, string name)
    {
        Name = WorkspaceName.Validate(name);
        Paths = paths;
        Dir = Path.Combine(paths.Workspaces, name);
        LockPath = Path.Combine(paths.Root, "locks", name + ".lock");
    }

    public string Name { get; }
    public StatePaths Paths { get; }
    public string Dir { get; }
    public string LockPath { get; }
    public string ConfigPath => Path.Combine(Dir, "config.json");
    public string StatePath => Path.Combine(Dir, "state.json");
    public string EventsPath => Path.Combine(Dir, "events.jsonl");
    public string ResultPath => Path.Combine(Dir, "result.json");
    public string BootPath => Path.Combine(Dir, "boot.json");
    public string DiskPath => Path.Combine(Dir, "root.qcow2");
    public string SerialLogPath => Path.Combine(Dir, WorkspaceVm.Files.SerialLog);
    public string SupervisorLogPath => Path.Combine(Dir, "supervisor.log");
    public string ControlSocketPath => Path.Combine(Dir, "control.sock");
    public string HybridSocketPath => Path.Combine(Dir, WorkspaceVm.Files.Vsock);

    public bool Exists => File.Exists(ConfigPath) && File.Exists(StatePath);

    /// <summary>Sockets a live supervisor owns; stale once it is gone.</summary>
    public IEnumerable<string> RuntimeFiles()
    {
        yield return ControlSocketPath;
        yield return HybridSocketPath;
        yield return Path.Combine(Dir, WorkspaceVm.Files.VhostUser);
        yield return Path.Combine(Dir, WorkspaceVm.Files.Qmp);
        if (Directory.Exists(Dir))
            foreach (string f in Directory.EnumerateFiles(Dir, WorkspaceVm.Files.Vsock + "_*")) yield return f;
    }

    public WorkspaceConfig ReadConfig() => Read(ConfigPath, WorkspaceJson.Default.WorkspaceConfig);

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
        var current = ReadState();
        WorkspaceStateMachine.EnsureTransition(Name, current.State, to);
        var now = DateTimeOffset.UtcNow;
        var next = (change?.Invoke(current) ?? current) with { State = to, Previous = current.State, Detail = detail, Since = now };
        if (!to.IsActive()) next = next with { SupervisorPid = null, SupervisorStartTime = null, QemuPid = null, GuestReady = false, ExecReady = false };
        WriteState(next);
        AppendEvent(new WorkspaceEvent(Name, to, current.State, detail, now));
        return next;
    }

    /// <summary>Changes fields other than the state.</summary>
    public WorkspaceStateRecord Update(Func<WorkspaceStateRecord, WorkspaceStateRecord> change)
    {
        var next = change(ReadState());
        WriteState(next);
        return next;
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

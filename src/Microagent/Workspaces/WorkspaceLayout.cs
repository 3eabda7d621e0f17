using Microagent.Errors;

namespace Microagent.Workspaces;

/// <summary>
/// Every file and socket name inside one workspace directory (docs/ARCHITECTURE.md "Who writes state"). Nothing else spells these
/// names. Persistent: config, state, state lock, events, result, boot record, root disk, logs. Runtime (owned by a live
/// supervisor, stale once it is gone): the control socket, the hybrid vsock socket and its per-port guest listeners
/// <c>vsock.sock_&lt;port&gt;</c>, the vhost-user socket, the QMP socket, the space reserve.
/// </summary>
internal sealed class WorkspaceLayout(string dir)
{
    /// <summary>Longest unix socket path (sun_path is 108 bytes with its NUL).</summary>
    public const int MaxSocketPathBytes = 107;

    /// <summary>Names inside the directory.</summary>
    public static class Names
    {
        /// <summary>The resolved spec.</summary>
        public const string Config = "config.json";
        /// <summary>The runtime state record (atomic writes).</summary>
        public const string State = "state.json";
        /// <summary>flock held across every read-modify-write of <see cref="State"/>.</summary>
        public const string StateLock = "state.lock";
        /// <summary>Append-only state events.</summary>
        public const string Events = "events.jsonl";
        /// <summary>The workload's result.</summary>
        public const string Result = "result.json";
        /// <summary>What the current or last boot used.</summary>
        public const string Boot = "boot.json";
        /// <summary>qcow2 overlay on the image baseline.</summary>
        public const string Disk = "root.qcow2";
        /// <summary>Guest serial console.</summary>
        public const string SerialLog = "serial.log";
        /// <summary>The egress audit (one JSON line per network decision, docs/ARCHITECTURE.md "Networking").</summary>
        public const string EgressAudit = "egress.jsonl";
        /// <summary>The containment record of a quarantine (docs/ARCHITECTURE.md "Quarantine"; atomic writes under the state lock).</summary>
        public const string Containment = "containment.json";
        /// <summary>The model mediator's audit (one JSON line per request, docs/ARCHITECTURE.md "Model mediation").</summary>
        public const string ModelAudit = "model-audit.jsonl";
        /// <summary>The supervisor's stderr.</summary>
        public const string SupervisorLog = "supervisor.log";
        /// <summary>The supervisor's control socket.</summary>
        public const string ControlSocket = "control.sock";
        /// <summary>Hybrid vsock socket (host side); guest listeners are this name + <c>_PORT</c>.</summary>
        public const string HybridSocket = "vsock.sock";
        /// <summary>vhost-user socket QEMU connects to.</summary>
        public const string VhostUserSocket = "vhost-user.sock";
        /// <summary>QMP socket.</summary>
        public const string QmpSocket = "qmp.sock";
        /// <summary>Blocks the supervisor holds while the guest runs and frees to record a full host disk (<see cref="HostSpace"/>).</summary>
        public const string Reserve = "reserve";
    }

    /// <summary>The workspace directory.</summary>
    public string Dir { get; } = dir;

    public string Config => In(Names.Config);
    public string State => In(Names.State);
    public string StateLock => In(Names.StateLock);
    public string Events => In(Names.Events);
    public string Result => In(Names.Result);
    public string Boot => In(Names.Boot);
    public string Disk => In(Names.Disk);
    public string SerialLog => In(Names.SerialLog);
    public string SupervisorLog => In(Names.SupervisorLog);
    public string Containment => In(Names.Containment);
    public string EgressAudit => In(Names.EgressAudit);
    public string ModelAudit => In(Names.ModelAudit);
    public string ControlSocket => In(Names.ControlSocket);
    public string HybridSocket => In(Names.HybridSocket);
    public string VhostUserSocket => In(Names.VhostUserSocket);
    public string QmpSocket => In(Names.QmpSocket);
    public string Reserve => In(Names.Reserve);

    /// <summary>
    /// Where a guest connection to host port <paramref name="port"/> is delivered. The vsock backend derives the same path
    /// from <see cref="HybridSocket"/> itself (Firecracker hybrid-vsock convention: <c>&lt;hybrid&gt;_&lt;port&gt;</c>).
    /// </summary>
    public string GuestListener(uint port) => GuestListenerOf(HybridSocket, port);

    /// <summary>The guest listener of <paramref name="port"/> beside the hybrid socket <paramref name="hybridSocket"/>.</summary>
    public static string GuestListenerOf(string hybridSocket, uint port) => $"{hybridSocket}_{port}";

    /// <summary>Sockets (and the space reserve) a live supervisor owns; stale once it is gone.</summary>
    public IEnumerable<string> RuntimeFiles()
    {
        yield return Reserve;
        yield return ControlSocket;
        yield return HybridSocket;
        yield return VhostUserSocket;
        yield return QmpSocket;
        if (Directory.Exists(Dir))
            foreach (string f in Directory.EnumerateFiles(Dir, Names.HybridSocket + "_*")) yield return f;
    }

    /// <summary>Throws <c>invalid</c> when the longest socket path of this directory does not fit a unix socket address.</summary>
    public void EnsureSocketPathsFit(uint longestPort)
    {
        string longest = GuestListener(longestPort);
        if (longest.Length > MaxSocketPathBytes)
            throw MicroagentException.Invalid($"workspace path is too long for a unix socket ({longest.Length} bytes, limit {MaxSocketPathBytes}): {Dir}",
                "use a shorter state directory path");
    }

    /// <summary>
    /// Every qcow2 disk under the workspaces directory of <paramref name="paths"/> (root disks and any snapshot layers) and every warm-start template layer, for
    /// the image store's "is this baseline in use" question: the image side never walks workspace directories itself.
    /// </summary>
    public static IEnumerable<string> AllDisks(StatePaths paths)
    {
        var options = new EnumerationOptions { RecurseSubdirectories = true, MaxRecursionDepth = 4, IgnoreInaccessible = true, AttributesToSkip = FileAttributes.ReparsePoint };
        IEnumerable<string> workspaces = Directory.Exists(paths.Workspaces) ? Directory.EnumerateFiles(paths.Workspaces, "*.qcow2", options) : [];
        // Warm-start template layers are disks on image baselines too (docs/ARCHITECTURE.md "Warm start").
        string templateLayers = Snapshots.DiskLayers.Dir(paths.Templates);
        return Directory.Exists(templateLayers) ? workspaces.Concat(Directory.EnumerateFiles(templateLayers, "*.qcow2")) : workspaces;
    }

    private string In(string name) => Path.Combine(Dir, name);
}

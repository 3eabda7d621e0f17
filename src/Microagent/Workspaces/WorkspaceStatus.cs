using Microagent.Mediation;
using Microagent.Networking;

namespace Microagent.Workspaces;

/// <summary>What <c>status</c> reports for one workspace.</summary>
public sealed record WorkspaceStatus
{
    /// <summary>Workspace name.</summary>
    public required string Name { get; init; }
    /// <summary>Current state (after reconciling with /proc when the supervisor is gone).</summary>
    public WorkspaceState State { get; init; }
    /// <summary>State before the last transition.</summary>
    public WorkspaceState? Previous { get; init; }
    /// <summary>Why the last transition happened.</summary>
    public string? Detail { get; init; }
    /// <summary>When the last transition happened.</summary>
    public DateTimeOffset Since { get; init; }
    /// <summary>The guest agent said hello on this boot.</summary>
    public bool GuestReady { get; init; }
    /// <summary>Exec is served (setup done, state running).</summary>
    public bool ExecReady { get; init; }
    /// <summary>Setup has run successfully (it never runs again).</summary>
    public bool SetupCompleted { get; init; }
    /// <summary>Supervisor and QEMU process ids while active.</summary>
    public WorkspacePids Pids { get; init; } = new(null, null);
    /// <summary>Stored configuration.</summary>
    public required WorkspaceConfig Config { get; init; }
    /// <summary>The current or last boot (sizes, accelerator, kernel hash).</summary>
    public BootRecord? Boot { get; init; }
    /// <summary>Bytes the workspace's own disk overlay occupies on the host.</summary>
    public long DiskUsageBytes { get; init; }
    /// <summary>Bytes free on the host filesystem holding the workspace directory (statvfs); null when it cannot be read.</summary>
    public long? StateDirFreeBytes { get; init; }
    /// <summary>While <c>paused</c>: why (<see cref="PauseCauses"/>).</summary>
    public string? PauseCause { get; init; }
    /// <summary>Kernel release and sha256 of the last boot.</summary>
    public WorkspaceHash? Kernel { get; init; }
    /// <summary>Root filesystem: image manifest digest (the baseline is content-addressed by it) and the baseline path.</summary>
    public required WorkspaceHash Rootfs { get; init; }
    /// <summary>Last observed exec/cp/connect activity.</summary>
    public DateTimeOffset? LastActivity { get; init; }
    /// <summary>The workspace directory.</summary>
    public required string Directory { get; init; }
    /// <summary>The mediation channel in effect (this boot's, else the stored one); null = none.</summary>
    public MediationConfig? Mediation { get; init; }
    /// <summary>
    /// Mediation readiness (<c>mediationReady {ready, detail, error}</c>): from the supervisor's bounded probe of the target when
    /// running; null when the workspace has no mediation channel.
    /// </summary>
    public MediationReadiness? MediationReady { get; init; }
    /// <summary>The network in effect (this boot's while active, else the stored one).</summary>
    public NetworkConfig? Network { get; init; }
    /// <summary>While running: the supervisor's view (published ports listened on, egress counters, severed); null otherwise.</summary>
    public NetworkStatus? NetworkState { get; init; }
    /// <summary>The containment record of the last quarantine (each phase with its status and time); null when never quarantined (docs/ARCHITECTURE.md "Quarantine").</summary>
    public Containment.ContainmentRecord? Containment { get; init; }
}

/// <summary>Process ids of a running workspace.</summary>
/// <param name="Supervisor">The supervisor process.</param>
/// <param name="Qemu">The QEMU process.</param>
public sealed record WorkspacePids(int? Supervisor, int? Qemu);

/// <summary>An artefact and its hash.</summary>
/// <param name="Name">Release or path.</param>
/// <param name="Sha256">sha256 (hex) or a digest.</param>
public sealed record WorkspaceHash(string? Name, string? Sha256);

/// <summary>How <see cref="WorkspaceManager.DeleteAsync"/> treats a running workspace.</summary>
public sealed record DeleteOptions
{
    /// <summary>Halt a running workspace first (<c>--yes</c>).</summary>
    public bool StopRunning { get; init; }
    /// <summary>Kill a running workspace first (<c>--force</c>).</summary>
    public bool Force { get; init; }
}

/// <summary>The outcome of a delete.</summary>
/// <param name="Name">Workspace name.</param>
/// <param name="Existed">False when there was nothing to delete (which is not an error).</param>
/// <param name="StoppedFirst">It was running and was halted or killed first.</param>
public sealed record DeleteResult(string Name, bool Existed, bool StoppedFirst);

/// <summary>What <see cref="WorkspaceManager.GcAsync"/> reaped.</summary>
/// <param name="Reconciled">Workspaces whose supervisor was gone and whose state was corrected.</param>
/// <param name="KilledQemu">Stray QEMU process ids killed.</param>
/// <param name="RemovedSockets">Stale socket files removed.</param>
/// <param name="RemovedRuns">Directories of one-shot runs that were killed before cleaning up.</param>
public sealed record GcReport(IReadOnlyList<string> Reconciled, IReadOnlyList<int> KilledQemu, IReadOnlyList<string> RemovedSockets, IReadOnlyList<string> RemovedRuns);

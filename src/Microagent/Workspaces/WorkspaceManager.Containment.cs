using System.Runtime.CompilerServices;
using Microagent.Mediation;
using Microagent.Networking;
using Microagent.Workspaces.Containment;
using Microagent.Workspaces.Manager;

namespace Microagent.Workspaces;

/// <summary>Containment: quarantine, pause and resume, severing the mediation channel and the network, the egress audit (docs/ARCHITECTURE.md "Pause and resume", "Networking").</summary>
public sealed partial class WorkspaceManager
{
    // ---- pause / resume ---------------------------------------------------------------------------------

    /// <summary>
    /// Freezes a running workspace's vCPUs in place: <c>paused</c> with <paramref name="reason"/> (cause <c>user</c>). exec and cp are
    /// refused with <c>conflict</c> and the idle lease does not run down until <see cref="ResumeAsync"/>. Already paused by the user: no-op.
    /// </summary>
    public async Task<WorkspaceStatus> PauseAsync(string name, string? reason = null, CancellationToken ct = default)
    {
        var store = Store(name);
        using var held = await LockAsync(store, ct).ConfigureAwait(false);
        StatusReader.ReadConfigOrThrow(store);
        await _pause.PauseAsync(store, reason, ct).ConfigureAwait(false);
        return StatusReader.Project(store);
    }

    /// <summary>
    /// Thaws a paused workspace and sets its wall clock from the host: <c>running</c>. Paused by the host (disk full): resumes
    /// once the disk has room (<c>resource_exhausted</c> before). Running: no-op; any other state: <c>conflict</c>.
    /// </summary>
    public async Task<WorkspaceStatus> ResumeAsync(string name, CancellationToken ct = default)
    {
        var store = Store(name);
        using var held = await LockAsync(store, ct).ConfigureAwait(false);
        StatusReader.ReadConfigOrThrow(store);
        await _pause.ResumeAsync(store, ct).ConfigureAwait(false);
        return StatusReader.Project(store);
    }

    // ---- quarantine ---------------------------------------------------------------------------------------

    /// <summary>
    /// Quarantines a running or paused workspace (docs/ARCHITECTURE.md "Quarantine"), in order, each phase recorded with its status
    /// and time in the containment record (<see cref="WorkspaceStatus.Containment"/>): the durable fence (state <c>quarantined</c>),
    /// the vCPUs frozen, network egress, DNS and published ports, mediation, <c>--vsock</c> proxies and console input severed, a
    /// forensic snapshot while frozen (tag <c>forensic-&lt;time&gt;</c>, not restorable) when <paramref name="capture"/>, the VM
    /// stopped. An interrupted or failed quarantine (the record says how far it got) is completed by calling this again, with
    /// <paramref name="capture"/> false to give up a capture that failed; a complete one is returned as it is. Only
    /// <see cref="HaltAsync(string, TimeSpan?, string?, CancellationToken)"/> and <see cref="KillAsync(string, string?, CancellationToken)"/>
    /// release it; <see cref="StartAsync"/> refuses it until then.
    /// </summary>
    public async Task<QuarantineResult> QuarantineAsync(string name, string reason, bool capture = true, CancellationToken ct = default)
    {
        var store = Store(name);
        using var held = await LockAsync(store, ct).ConfigureAwait(false);
        StatusReader.ReadConfigOrThrow(store);
        return await _quarantine.RunAsync(store, reason, capture, ct).ConfigureAwait(false);
    }

    /// <summary>What <see cref="QuarantineAsync"/> would do now (the phases still to run), checked by the same rules; nothing is done.</summary>
    public QuarantineResult PlanQuarantine(string name, string reason, bool capture = true)
    {
        var store = Store(name);
        StatusReader.ReadConfigOrThrow(store);
        return _quarantine.Plan(store, reason, capture);
    }

    // ---- severing -----------------------------------------------------------------------------------------

    /// <summary>
    /// Severs the workspace's mediation channel (the quarantine hook): the supervisor closes every relayed connection and stops
    /// accepting, so no byte crosses and new guest connections are refused until the next start. Not running or no channel:
    /// <see cref="WorkspaceStateException"/> / <see cref="WorkspaceSpecException"/>.
    /// </summary>
    public async Task<MediationReadiness> SeverMediationAsync(string name, CancellationToken ct = default)
    {
        var store = Store(name);
        StatusReader.ReadConfigOrThrow(store);
        return await _status.SeverMediationAsync(store, ct).ConfigureAwait(false);
    }

    /// <summary>
    /// Severs the workspace's network (the quarantine hook, docs/ARCHITECTURE.md "Networking"): every egress connection is
    /// closed, DNS stops, the published listeners close and new connections are refused, all before this returns (well within
    /// one second), until the next start. Not running: <see cref="WorkspaceStateException"/>.
    /// </summary>
    public async Task<NetworkStatus> SeverNetworkAsync(string name, CancellationToken ct = default)
    {
        var store = Store(name);
        StatusReader.ReadConfigOrThrow(store);
        return await _network.SeverAsync(store, ct).ConfigureAwait(false);
    }

    /// <summary>The egress audit (one record per network decision); with <paramref name="follow"/>, waits for new records while the workspace is active.</summary>
    public async IAsyncEnumerable<EgressRecord> ReadEgressAsync(string name, bool follow = false, [EnumeratorCancellation] CancellationToken ct = default)
    {
        var store = Store(name);
        StatusReader.ReadConfigOrThrow(store);
        await foreach (var r in NetworkControl.ReadAuditAsync(store, follow, ct).ConfigureAwait(false)) yield return r;
    }
}

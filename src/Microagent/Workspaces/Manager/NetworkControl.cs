using System.Net.Sockets;
using System.Runtime.CompilerServices;
using Microagent.Errors;
using Microagent.Networking;

namespace Microagent.Workspaces.Manager;

/// <summary>
/// The manager's side of a workspace's network (docs/ARCHITECTURE.md "Networking"): the supervisor's network state for
/// status, severing, and the egress audit. The rules of the network itself live in <see cref="NetworkConfig"/> and
/// <see cref="EgressPolicy"/>.
/// </summary>
internal sealed class NetworkControl(IControlClient control, Reconciler reconciler)
{
    /// <summary>The network in effect: this boot's while active, else the stored one the next start uses.</summary>
    public static NetworkConfig InEffect(WorkspaceStatus status) =>
        (status.State.IsActive() && status.Boot is not null ? status.Boot.Network : status.Config.Network) ?? NetworkConfig.Default;

    /// <summary><paramref name="status"/> with the network in effect and, when running, the supervisor's live state (null when it does not answer).</summary>
    public async Task<WorkspaceStatus> WithStateAsync(WorkspaceStore store, WorkspaceStatus status, CancellationToken ct)
    {
        status = status with { Network = InEffect(status) };
        if (status.State is not (WorkspaceState.Running or WorkspaceState.Paused)) return status;
        try
        {
            var response = await control.SendAsync(store.ControlSocketPath, ControlRequests.NetworkStatus(), ct).ConfigureAwait(false);
            return status with { NetworkState = response.Network };
        }
        catch (Exception e) when (e is MicroagentException or IOException or SocketException) { return status; }
    }

    /// <summary>
    /// Severs the network of a running workspace: every egress connection closed, DNS stopped, the published listeners closed,
    /// new connections refused (done by the supervisor before it answers, well within a second). Until the next start.
    /// </summary>
    public async Task<NetworkStatus> SeverAsync(WorkspaceStore store, CancellationToken ct)
    {
        var state = reconciler.Reconcile(store);
        if (state.State is not (WorkspaceState.Running or WorkspaceState.Paused or WorkspaceState.Starting))
            throw new WorkspaceStateException(store.Name, state.State, $"workspace '{store.Name}' is {state.State.WireName()}: there is no network to sever", "start it first");
        var response = await control.SendAsync(store.ControlSocketPath, ControlRequests.SeverNetwork(), ct).ConfigureAwait(false);
        if (!response.Ok || response.Network is null)
            throw MicroagentException.Transient($"the supervisor did not sever the network: {response.Error ?? "no answer"}");
        return response.Network;
    }

    /// <summary>The egress audit of <paramref name="store"/>; with <paramref name="follow"/>, new records as they come while the workspace is active.</summary>
    public static async IAsyncEnumerable<EgressRecord> ReadAuditAsync(WorkspaceStore store, bool follow, [EnumeratorCancellation] CancellationToken ct)
    {
        await foreach (var r in EgressAudit.ReadAsync(store.EgressAuditPath, follow, () => store.ReadState().State.IsActive(), ct).ConfigureAwait(false))
            yield return r;
    }
}

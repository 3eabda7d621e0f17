using Microagent.Tools;
using Microagent.Errors;

namespace Microagent.Workspaces.Manager;

/// <summary>
/// <see cref="WorkspaceManager.PauseAsync"/> and <see cref="WorkspaceManager.ResumeAsync"/> (docs/ARCHITECTURE.md "Pause and resume"):
/// the checks a caller can be told about before the supervisor is asked, then the control request. The caller holds the
/// workspace lock. Rules: pause needs running (paused by the user already: no-op; paused by the host: <c>conflict</c>);
/// resume of running is a no-op, of a host pause needs the disk space the supervisor would wait for
/// (<c>resource_exhausted</c> otherwise), of anything else is a <c>conflict</c>.
/// </summary>
internal sealed class PauseControl(IControlClient control, Reconciler reconciler)
{
    /// <summary>Longest pause reason kept (it becomes the state's detail).</summary>
    public const int MaxReasonLength = 200;

    /// <summary>Pauses a running workspace with <paramref name="reason"/>.</summary>
    public async Task PauseAsync(WorkspaceStore store, string? reason, CancellationToken ct)
    {
        if (reason is { Length: > MaxReasonLength } || (reason?.Any(char.IsControl) ?? false))
            throw new WorkspaceSpecException($"the pause reason must be at most {MaxReasonLength} characters without control characters", "shorten it") { Field = "reason" };
        var state = reconciler.Reconcile(store);
        if (state.State == WorkspaceState.Paused && state.PauseCause == PauseCauses.User) return;
        if (state.State == WorkspaceState.Paused)
            throw new WorkspaceStateException(store.Name, state.State, $"workspace '{store.Name}' is already paused by the host: {state.Detail}",
                $"free space on the filesystem of {store.Dir}; the supervisor resumes it by itself");
        if (state.State != WorkspaceState.Running)
            throw new WorkspaceStateException(store.Name, state.State, $"workspace '{store.Name}' is {state.State.WireName()}: only a running workspace can be paused",
                state.State == WorkspaceState.Starting ? $"wait for `microagent start {store.Name}` to finish" : $"start it first: `microagent start {store.Name}`");
        await SendAsync(store, new ControlRequest { Type = ControlVerb.Pause, Reason = string.IsNullOrWhiteSpace(reason) ? null : reason }, ct).ConfigureAwait(false);
    }

    /// <summary>Resumes a paused workspace (the user's pause, or the host's once the disk has room).</summary>
    public async Task ResumeAsync(WorkspaceStore store, CancellationToken ct)
    {
        var state = reconciler.Reconcile(store);
        if (state.State == WorkspaceState.Running) return;
        if (state.State != WorkspaceState.Paused)
            throw new WorkspaceStateException(store.Name, state.State, $"workspace '{store.Name}' is {state.State.WireName()}, not paused",
                $"`microagent start {store.Name}` boots a stopped workspace; resume only thaws a paused one");
        if (PauseCauses.IsHost(state.PauseCause) && !(HostSpace.FreeBytes(store.Dir) is { } free && free >= HostSpace.ResumeFreeBytes + HostSpace.ReserveBytes))
            throw new WorkspaceHostFaultException(store.Name, $"workspace '{store.Name}' was paused by the host and its disk is still full: {state.Detail}",
                $"free at least {ByteSize.Format(HostSpace.ResumeFreeBytes + HostSpace.ReserveBytes)} on the filesystem of {store.Dir} " +
                $"(now {(HostSpace.FreeBytes(store.Dir) is { } f ? ByteSize.Format(f) : "unknown")} free); the supervisor then resumes it by itself");
        await SendAsync(store, new ControlRequest { Type = ControlVerb.Resume }, ct).ConfigureAwait(false);
    }

    private async Task SendAsync(WorkspaceStore store, ControlRequest request, CancellationToken ct)
    {
        var response = await control.SendAsync(store.ControlSocketPath, request, ct).ConfigureAwait(false);
        if (response.Ok) return;
        var state = store.ReadState();
        throw new WorkspaceStateException(store.Name, state.State,
            $"workspace '{store.Name}' did not {ControlVerbJsonConverter.WireName(request.Type)}: {response.Error ?? "no reason given"}",
            $"`microagent status {store.Name}` shows its state and `supervisor.log` in its directory says more");
    }
}

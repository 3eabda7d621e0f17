using System.Net.Sockets;
using Microagent.Errors;
using Microagent.Protocol;
using Microagent.Vsock;

namespace Microagent.Workspaces.Manager;

/// <summary>
/// The manager's side of a workspace's console sessions (<c>connect</c>, docs/ARCHITECTURE.md "Console"): opening one, and
/// severing them all. Sessions are vsock connections to the guest's console port through the supervisor's backend, so the
/// supervisor can close them all and refuse new ones by port (control verb <c>sever-console</c>) without the guest's help.
/// </summary>
internal sealed class ConsoleControl(IControlClient control, Reconciler reconciler)
{
    private readonly IControlClient _control = control;
    private readonly Reconciler _reconciler = reconciler;

    /// <summary>
    /// Closes every console session of the workspace and refuses new ones until the next start (the quarantine hook). Done
    /// by the supervisor before it answers. Not active: <see cref="WorkspaceStateException"/>.
    /// </summary>
    public async Task<ConsoleStatus> SeverAsync(WorkspaceStore store, CancellationToken ct)
    {
        var state = _reconciler.Reconcile(store);
        // Quarantined: between the quarantine's two stages the supervisor still holds the frozen guest (docs/ARCHITECTURE.md "Quarantine").
        if (state.State is not (WorkspaceState.Running or WorkspaceState.Paused or WorkspaceState.Starting or WorkspaceState.Quarantined))
            throw new WorkspaceStateException(store.Name, state.State, $"workspace '{store.Name}' is {state.State.WireName()}: there is no console to sever", "start it first");
        var response = await _control.SendAsync(store.ControlSocketPath, ControlRequests.SeverConsole(), ct).ConfigureAwait(false);
        if (!response.Ok || response.Console is null)
            throw MicroagentException.Transient($"the supervisor did not sever the console: {response.Error ?? "no answer"}");
        return response.Console;
    }

    /// <summary>The console sessions of a running workspace (the supervisor's count; severed or not).</summary>
    public async Task<ConsoleStatus> StatusAsync(WorkspaceStore store, CancellationToken ct)
    {
        var response = await _control.SendAsync(store.ControlSocketPath, ControlRequests.ConsoleStatus(), ct).ConfigureAwait(false);
        return response is { Ok: true, Console: { } c } ? c
            : throw MicroagentException.Transient($"the supervisor did not report the console: {response.Error ?? "no answer"}");
    }

    /// <summary>
    /// Opens a console session on the running workspace of <paramref name="config"/>: the configured shell (none configured:
    /// the image's /bin/bash, else /bin/sh) with the image's and the workspace's environment, user and working directory.
    /// Severed consoles are a <c>conflict</c>.
    /// </summary>
    public async Task<WorkspaceConsole> OpenAsync(WorkspaceStore store, WorkspaceConfig config, ConsoleOptions options, CancellationToken ct)
    {
        if (!ConsoleInfo.IsValidSize(options.Rows, options.Cols))
            throw new MicroagentException(ErrorKind.Invalid, $"terminal size {options.Rows}x{options.Cols} is outside 1..{ConsoleInfo.MaxDimension}") { Field = "rows" };
        if (options.Term is { } t && (t.Length is 0 or > ConsoleInfo.MaxTermLength || t.Any(c => c is < '!' or > '~')))
            throw new MicroagentException(ErrorKind.Invalid, $"TERM '{t}' is not 1 to {ConsoleInfo.MaxTermLength} printable ASCII characters") { Field = "term" };
        await ThrowIfSeveredAsync(store, ct).ConfigureAwait(false);
        string? shell = config.Shell == WorkspaceLimits.DefaultShell ? null : config.Shell;
        var defaults = GuestCommand.In(config, [shell ?? ConsoleInfo.FallbackShells[^1]]).ToRequest();
        var request = new ConsoleRequest
        {
            Rows = options.Rows, Cols = options.Cols, Term = options.Term, Shell = shell, Env = defaults.Env, Cwd = defaults.Cwd, User = defaults.User,
        };
        Stream connection;
        try { connection = await HybridVsock.ConnectAsync(store.HybridSocketPath, ConsoleInfo.Port, ct).ConfigureAwait(false); }
        catch (MicroagentException) when (!ct.IsCancellationRequested)
        {
            await ThrowIfSeveredAsync(store, ct).ConfigureAwait(false); // a sever raced with this connect
            throw;
        }
        return await WorkspaceConsole.OpenAsync(store.Name, connection, request, ct).ConfigureAwait(false);
    }

    private async Task ThrowIfSeveredAsync(WorkspaceStore store, CancellationToken ct)
    {
        ConsoleStatus status;
        try { status = await StatusAsync(store, ct).ConfigureAwait(false); }
        catch (Exception e) when (e is MicroagentException or IOException or SocketException && !ct.IsCancellationRequested)
        {
            return; // an older or busy supervisor: the backend still refuses a severed port
        }
        if (status.Severed)
            throw new MicroagentException(ErrorKind.Conflict, $"the console of '{store.Name}' is severed (quarantine) until the next start",
                $"halt, stop or kill it, then start it again: `microagent kill {store.Name}` and `microagent start {store.Name}`");
    }
}

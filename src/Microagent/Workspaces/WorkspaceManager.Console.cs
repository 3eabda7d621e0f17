using System.Diagnostics;

namespace Microagent.Workspaces;

/// <summary>The console: interactive sessions, one line sent through one, and severing them (docs/ARCHITECTURE.md "Console").</summary>
public sealed partial class WorkspaceManager
{
    /// <summary>
    /// Opens an interactive console on a running workspace: a login shell on a pseudo-terminal in the guest (the workspace's
    /// shell; none configured: the image's /bin/bash, else /bin/sh) of <paramref name="options"/>' size. The caller owns the
    /// session; disposing it detaches (the shell is hung up, the workspace keeps running). An open session keeps the idle lease
    /// alive. Paused, not running, or severed: <c>conflict</c>.
    /// </summary>
    public async Task<WorkspaceConsole> ConnectAsync(string name, ConsoleOptions? options = null, CancellationToken ct = default)
    {
        var store = Store(name);
        var config = _status.EnsureRunning(store);
        return await _console.OpenAsync(store, config, options ?? new ConsoleOptions(), ct).ConfigureAwait(false);
    }

    /// <summary>
    /// Runs one line through a fresh console session, non-interactively, and returns what it printed (without prompts and the
    /// echo of the input) with its exit status. Not done within <paramref name="timeout"/> (default 5 s, from the connect):
    /// <see cref="ConsoleTimeoutException"/> (<c>timeout</c>) carrying the partial output. The line must not read the terminal.
    /// </summary>
    public async Task<ConsoleSendResult> SendLineAsync(string name, string line, TimeSpan? timeout = null, CancellationToken ct = default)
    {
        ConsoleLine.Validate(line);
        TimeSpan limit = timeout ?? ConsoleLine.DefaultTimeout;
        if (limit <= TimeSpan.Zero) throw new Errors.MicroagentException(Errors.ErrorKind.Invalid, "the timeout must be positive") { Field = "timeout_ms" };
        var clock = Stopwatch.StartNew();
        // A dumb terminal: no colours, no bracketed paste, nothing a program draws for a screen.
        await using var console = await ConnectAsync(name, new ConsoleOptions { Rows = 24, Cols = 200, Term = "dumb" }, ct).ConfigureAwait(false);
        return await ConsoleLine.RunAsync(console, line, limit, clock, ct).ConfigureAwait(false);
    }

    /// <summary>
    /// Severs the workspace's console (the quarantine hook): every open console session is closed and new ones are refused until
    /// the next start, done by the supervisor before this returns. Not active: <see cref="WorkspaceStateException"/>.
    /// </summary>
    public async Task<ConsoleStatus> SeverConsoleAsync(string name, CancellationToken ct = default)
    {
        var store = Store(name);
        Manager.StatusReader.ReadConfigOrThrow(store);
        return await _console.SeverAsync(store, ct).ConfigureAwait(false);
    }
}

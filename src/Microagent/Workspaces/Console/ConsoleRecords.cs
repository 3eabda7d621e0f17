using Microagent.Errors;

namespace Microagent.Workspaces;

/// <summary>The terminal of a console session (<see cref="WorkspaceManager.ConnectAsync"/>, docs/ARCHITECTURE.md "Console").</summary>
public sealed record ConsoleOptions
{
    /// <summary>Terminal rows (1 to 1000).</summary>
    public int Rows { get; init; } = 24;
    /// <summary>Terminal columns (1 to 1000).</summary>
    public int Cols { get; init; } = 80;
    /// <summary>TERM for the guest's shell; null: <c>xterm-256color</c>.</summary>
    public string? Term { get; init; }
}

/// <summary>How a console session ended.</summary>
/// <param name="ShellExited">The shell ended by itself (exit or signal); false when the connection closed first (detached, severed, the VM stopped).</param>
/// <param name="ExitCode">The shell's exit code (128+N when killed by signal N); null when it did not end.</param>
/// <param name="Signal">The signal that killed the shell, if one did.</param>
public sealed record ConsoleEnd(bool ShellExited, int? ExitCode, int? Signal);

/// <summary>The console sessions of a running workspace.</summary>
/// <param name="Severed">Console sessions are severed until the next start: new ones are refused.</param>
/// <param name="Sessions">Console sessions open now.</param>
/// <param name="Closed">Sessions the request closed (a sever); 0 otherwise.</param>
public sealed record ConsoleStatus(bool Severed, int Sessions, int Closed);

/// <summary>The outcome of <see cref="WorkspaceManager.SendLineAsync"/>.</summary>
/// <param name="Output">What the line printed on the terminal (stdout and stderr together), without the shell's prompts and the echo of the input.</param>
/// <param name="ExitCode">The line's exit status (<c>$?</c> after it).</param>
/// <param name="DurationMs">Milliseconds from connect to the end of the output.</param>
public sealed record ConsoleSendResult(string Output, int ExitCode, long DurationMs);

/// <summary>A console line (<see cref="WorkspaceManager.SendLineAsync"/>) did not finish within its timeout (<see cref="ErrorKind.Timeout"/>).</summary>
public sealed class ConsoleTimeoutException(string message, string partialOutput, string remediation)
    : MicroagentException(ErrorKind.Timeout, message, remediation)
{
    /// <summary>What the line had printed when the time ran out.</summary>
    public string PartialOutput { get; } = partialOutput;
}

using System.Net.Sockets;

namespace Microagent.Errors;

/// <summary>
/// What an adapter reports for a failure: the same four fields (and the field at fault) whether the CLI prints it or the
/// MCP server returns it. Built by <see cref="ErrorMapping.FromException"/>.
/// </summary>
/// <param name="Kind">The error kind.</param>
/// <param name="Message">What went wrong.</param>
/// <param name="Remediation">What to do about it, when something can be done.</param>
/// <param name="Field">The input field at fault (snake_case), when one is.</param>
public sealed record MappedError(ErrorKind Kind, string Message, string? Remediation, string? Field)
{
    /// <summary>Whether retrying unchanged may succeed.</summary>
    public bool Retryable => Kind.IsRetryable();

    /// <summary>This error as a <see cref="MicroagentException"/> (for code that renders exceptions).</summary>
    public MicroagentException ToException() => new(Kind, Message, Remediation) { Field = Field };
}

/// <summary>
/// The one mapping from exceptions to error kinds (docs/ARCHITECTURE.md "Errors"). Every adapter (CLI, MCP server) uses it,
/// so the same failure has the same kind, exit code and retryability everywhere. Invariant: a <see cref="MicroagentException"/>
/// keeps its own kind; anything else is mapped by type, never by message text.
/// </summary>
public static class ErrorMapping
{
    private const string DoctorHint = "run `microagent doctor` (MCP: the doctor_check tool)";

    /// <summary>Maps <paramref name="e"/> (cancellation included: an interrupted operation is transient).</summary>
    public static MappedError FromException(Exception e)
    {
        ArgumentNullException.ThrowIfNull(e);
        if (e is AggregateException { InnerExceptions.Count: 1 } single) return FromException(single.InnerException!);
        return e switch
        {
            MicroagentException m => new(m.Kind, m.Message, m.Remediation, m.Field),
            OperationCanceledException => new(ErrorKind.Transient, "interrupted", "run it again", null),
            UnauthorizedAccessException => new(ErrorKind.PolicyDenied, e.Message, "check the permissions of the path (and of the state directory)", null),
            FileNotFoundException or DirectoryNotFoundException => new(ErrorKind.NotFound, e.Message, "check the path", null),
            PathTooLongException => new(ErrorKind.Invalid, e.Message, "use a shorter path (or a shorter --state-dir)", null),
            TimeoutException => new(ErrorKind.Transient, e.Message, "retry; if it persists, " + DoctorHint, null),
            SocketException or IOException => new(ErrorKind.Transient, e.Message, "retry; if it persists, " + DoctorHint, null),
            OutOfMemoryException or InsufficientExecutionStackException => new(ErrorKind.ResourceExhausted, e.Message, "free memory on the host and retry", null),
            PlatformNotSupportedException or NotSupportedException => new(ErrorKind.Unsupported, e.Message, DoctorHint, null),
            System.Text.Json.JsonException => new(ErrorKind.Permanent, $"unreadable JSON: {e.Message}", DoctorHint + "; a state file may be damaged", null),
            _ => new(ErrorKind.Permanent, $"{e.GetType().Name}: {e.Message}", DoctorHint + "; this may be a bug", null),
        };
    }
}

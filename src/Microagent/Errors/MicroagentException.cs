namespace Microagent.Errors;

/// <summary>
/// Every expected failure of the library: a kind, a message that says what went wrong,
/// and a remediation that says what to do about it. Messages never contain secrets.
/// </summary>
public class MicroagentException : Exception
{
    /// <summary>Creates the exception.</summary>
    public MicroagentException(ErrorKind kind, string message, string? remediation = null, Exception? inner = null)
        : base(message, inner)
    {
        Kind = kind;
        Remediation = remediation;
    }

    /// <summary>What kind of failure this is.</summary>
    public ErrorKind Kind { get; }

    /// <summary>What the user can do about it, if anything.</summary>
    public string? Remediation { get; }

    /// <summary>
    /// The input field at fault, in the library's snake_case vocabulary (<c>memory_mib</c>, <c>cpus</c>, <c>size_mib</c>,
    /// <c>ttl_seconds</c>, ...); null when no single field is to blame. Each adapter names it its own way (CLI flag, MCP argument).
    /// </summary>
    public string? Field { get; init; }

    /// <summary>Whether retrying unchanged may succeed.</summary>
    public bool Retryable => Kind.IsRetryable();

    /// <summary>Shorthand for an <see cref="ErrorKind.Invalid"/> failure.</summary>
    public static MicroagentException Invalid(string message, string? remediation = null) => new(ErrorKind.Invalid, message, remediation);

    /// <summary>Shorthand for a <see cref="ErrorKind.NotFound"/> failure.</summary>
    public static MicroagentException NotFound(string message, string? remediation = null) => new(ErrorKind.NotFound, message, remediation);

    /// <summary>Shorthand for an <see cref="ErrorKind.Unsupported"/> failure.</summary>
    public static MicroagentException Unsupported(string message, string? remediation = null) => new(ErrorKind.Unsupported, message, remediation);

    /// <summary>Shorthand for a <see cref="ErrorKind.Permanent"/> failure.</summary>
    public static MicroagentException Permanent(string message, string? remediation = null, Exception? inner = null) => new(ErrorKind.Permanent, message, remediation, inner);

    /// <summary>Shorthand for a <see cref="ErrorKind.Transient"/> failure.</summary>
    public static MicroagentException Transient(string message, string? remediation = null, Exception? inner = null) => new(ErrorKind.Transient, message, remediation, inner);
}

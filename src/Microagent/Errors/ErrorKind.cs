namespace Microagent.Errors;

/// <summary>The kind of a failure (docs/ARCHITECTURE.md "Errors"). Serialized in snake_case.</summary>
public enum ErrorKind
{
    /// <summary>May succeed if retried (exit 75).</summary>
    Transient,
    /// <summary>Will not succeed without a change (exit 1).</summary>
    Permanent,
    /// <summary>The target is in a state that forbids the operation.</summary>
    Conflict,
    /// <summary>The named thing does not exist.</summary>
    NotFound,
    /// <summary>Out of memory, disk, descriptors or similar.</summary>
    ResourceExhausted,
    /// <summary>This machine or build cannot do it.</summary>
    Unsupported,
    /// <summary>A policy forbids it.</summary>
    PolicyDenied,
    /// <summary>Bad input from the caller (exit 2 for usage errors).</summary>
    Invalid,
    /// <summary>The operation did not finish within the time it was given (exit 75; retrying, or a longer timeout, may succeed).</summary>
    Timeout,
}

/// <summary>Wire names and exit codes for <see cref="ErrorKind"/>.</summary>
public static class ErrorKinds
{
    /// <summary>snake_case name used in JSON output.</summary>
    public static string WireName(this ErrorKind kind) => kind switch
    {
        ErrorKind.Transient => "transient",
        ErrorKind.Permanent => "permanent",
        ErrorKind.Conflict => "conflict",
        ErrorKind.NotFound => "not_found",
        ErrorKind.ResourceExhausted => "resource_exhausted",
        ErrorKind.Unsupported => "unsupported",
        ErrorKind.PolicyDenied => "policy_denied",
        ErrorKind.Invalid => "invalid",
        ErrorKind.Timeout => "timeout",
        _ => "permanent",
    };

    /// <summary>The kind whose <see cref="WireName"/> is <paramref name="wire"/>; <see cref="ErrorKind.Permanent"/> when unknown.</summary>
    public static ErrorKind FromWireName(string? wire) =>
        Enum.GetValues<ErrorKind>().FirstOrDefault(k => k.WireName() == wire, ErrorKind.Permanent);

    /// <summary>Whether a failure of this kind is worth retrying unchanged.</summary>
    public static bool IsRetryable(this ErrorKind kind) => kind is ErrorKind.Transient or ErrorKind.ResourceExhausted or ErrorKind.Timeout;

    /// <summary>CLI exit code: 75 transient (and timeout), 2 invalid usage, 1 otherwise.</summary>
    public static int ExitCode(this ErrorKind kind) => kind switch
    {
        ErrorKind.Transient or ErrorKind.ResourceExhausted or ErrorKind.Timeout => 75,
        ErrorKind.Invalid => 2,
        _ => 1,
    };
}

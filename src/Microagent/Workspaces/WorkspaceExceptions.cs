using Microagent.Errors;

namespace Microagent.Workspaces;

/// <summary>The named workspace does not exist (<see cref="ErrorKind.NotFound"/>).</summary>
public sealed class WorkspaceNotFoundException(string name)
    : MicroagentException(ErrorKind.NotFound, $"no workspace named '{name}'", "see `microagent list`, or create it with `microagent create NAME`")
{
    /// <summary>The workspace name.</summary>
    public string Name { get; } = name;
}

/// <summary>A workspace with that name already exists (<see cref="ErrorKind.Conflict"/>).</summary>
public sealed class WorkspaceExistsException(string name)
    : MicroagentException(ErrorKind.Conflict, $"a workspace named '{name}' already exists", $"pick another name, or `microagent delete {name} --yes` first")
{
    /// <summary>The workspace name.</summary>
    public string Name { get; } = name;
}

/// <summary>The workspace's state forbids the operation (<see cref="ErrorKind.Conflict"/>).</summary>
public sealed class WorkspaceStateException(string name, WorkspaceState state, string message, string? remediation)
    : MicroagentException(ErrorKind.Conflict, message, remediation)
{
    /// <summary>The workspace name.</summary>
    public string Name { get; } = name;
    /// <summary>The state that forbade the operation.</summary>
    public WorkspaceState State { get; } = state;
}

/// <summary>
/// The host stopped the guest (its disk is full, or another host I/O error): exec and cp fail at once
/// (<see cref="ErrorKind.ResourceExhausted"/>) instead of waiting on a frozen guest.
/// </summary>
public sealed class WorkspaceHostFaultException(string name, string message, string remediation)
    : MicroagentException(ErrorKind.ResourceExhausted, message, remediation)
{
    /// <summary>The workspace name.</summary>
    public string Name { get; } = name;
}

/// <summary>Another command holds the workspace's lock for longer than the caller would wait (<see cref="ErrorKind.Conflict"/>).</summary>
public sealed class WorkspaceBusyException(string name)
    : MicroagentException(ErrorKind.Conflict, $"workspace '{name}' is busy: another microagent command is changing it", "retry when that command has finished")
{
    /// <summary>The workspace name.</summary>
    public string Name { get; } = name;
}

/// <summary>A workspace name or option is malformed (<see cref="ErrorKind.Invalid"/>).</summary>
public sealed class WorkspaceSpecException(string message, string? remediation = null)
    : MicroagentException(ErrorKind.Invalid, message, remediation);

/// <summary>Booting, setup or the VM failed (<see cref="ErrorKind.Permanent"/>); the workspace is in <c>failed</c>.</summary>
public sealed class WorkspaceFailedException(string name, string message, string? remediation)
    : MicroagentException(ErrorKind.Permanent, message, remediation)
{
    /// <summary>The workspace name.</summary>
    public string Name { get; } = name;
}

/// <summary>A copy into or out of a workspace failed (<see cref="ErrorKind.Permanent"/>).</summary>
public sealed class WorkspaceCopyException(string message, string? remediation = null)
    : MicroagentException(ErrorKind.Permanent, message, remediation);

/// <summary>A bounded wait ran out (<see cref="ErrorKind.Transient"/>: waiting again may succeed).</summary>
public sealed class WorkspaceTimeoutException(string message, string? remediation = null)
    : MicroagentException(ErrorKind.Transient, message, remediation);

/// <summary>
/// A verb was cancelled part way. It is an <see cref="OperationCanceledException"/> (callers that catch cancellation still
/// do) whose message says truthfully what the interruption left: e.g. an interrupted start killed its VM and kept the
/// workspace and its disk (<see cref="State"/> stopped); an interrupted one-shot run removed its workspace (<see cref="State"/> null).
/// </summary>
public sealed class WorkspaceInterruptedException(string name, WorkspaceState? state, string message, Exception? inner, CancellationToken token)
    : OperationCanceledException(message, inner, token)
{
    /// <summary>The workspace name.</summary>
    public string Name { get; } = name;
    /// <summary>The state the workspace was left in; null when it no longer exists.</summary>
    public WorkspaceState? State { get; } = state;
}

using Microagent.Errors;

namespace Microagent.Tests.Errors;

public sealed class ErrorKindTests
{
    [Theory]
    [InlineData(ErrorKind.Transient, "transient", 75, true)]
    [InlineData(ErrorKind.Permanent, "permanent", 1, false)]
    [InlineData(ErrorKind.Conflict, "conflict", 1, false)]
    [InlineData(ErrorKind.NotFound, "not_found", 1, false)]
    [InlineData(ErrorKind.ResourceExhausted, "resource_exhausted", 75, true)]
    [InlineData(ErrorKind.Unsupported, "unsupported", 1, false)]
    [InlineData(ErrorKind.PolicyDenied, "policy_denied", 1, false)]
    [InlineData(ErrorKind.Invalid, "invalid", 2, false)]
    [InlineData(ErrorKind.Timeout, "timeout", 75, true)]
    public void Maps_kinds_to_wire_names_exit_codes_and_retryability(ErrorKind kind, string wire, int exit, bool retryable)
    {
        Assert.Equal(wire, kind.WireName());
        Assert.Equal(exit, kind.ExitCode());
        Assert.Equal(retryable, new MicroagentException(kind, "m").Retryable);
    }
}

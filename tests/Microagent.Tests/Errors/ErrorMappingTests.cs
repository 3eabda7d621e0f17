using System.Net.Sockets;
using Microagent.Errors;

namespace Microagent.Tests.Errors;

public sealed class ErrorMappingTests
{
    public static TheoryData<Exception, ErrorKind> Cases => new()
    {
        { new MicroagentException(ErrorKind.Conflict, "busy", "wait"), ErrorKind.Conflict },
        { new IOException("disk went away"), ErrorKind.Transient },
        { new SocketException((int)SocketError.ConnectionRefused), ErrorKind.Transient },
        { new TimeoutException("slow"), ErrorKind.Transient },
        { new OperationCanceledException(), ErrorKind.Transient },
        { new TaskCanceledException(), ErrorKind.Transient },
        { new FileNotFoundException("gone", "/x"), ErrorKind.NotFound },
        { new DirectoryNotFoundException("gone"), ErrorKind.NotFound },
        { new UnauthorizedAccessException("no"), ErrorKind.PolicyDenied },
        { new PlatformNotSupportedException("no"), ErrorKind.Unsupported },
        { new System.Text.Json.JsonException("bad"), ErrorKind.Permanent },
        { new InvalidOperationException("bug"), ErrorKind.Permanent },
        { new ArgumentException("bug"), ErrorKind.Permanent },
        { new AggregateException(new IOException("inner")), ErrorKind.Transient },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Maps_each_exception_type_to_one_kind(Exception e, ErrorKind expected)
    {
        var m = ErrorMapping.FromException(e);
        Assert.Equal(expected, m.Kind);
        Assert.Equal(expected.IsRetryable(), m.Retryable);
        Assert.False(string.IsNullOrWhiteSpace(m.Message));
    }

    [Fact]
    public void A_library_exception_keeps_message_remediation_and_field()
    {
        var m = ErrorMapping.FromException(new MicroagentException(ErrorKind.Invalid, "memory too small", "use at least 128") { Field = "memory_mib" });
        Assert.Equal(new MappedError(ErrorKind.Invalid, "memory too small", "use at least 128", "memory_mib"), m);
        var back = m.ToException();
        Assert.Equal((ErrorKind.Invalid, "memory_mib", "use at least 128"), (back.Kind, back.Field, back.Remediation));
    }

    [Fact]
    public void Unknown_exceptions_are_permanent_and_name_their_type()
    {
        var m = ErrorMapping.FromException(new NullReferenceException("oops"));
        Assert.Equal(ErrorKind.Permanent, m.Kind);
        Assert.Contains("NullReferenceException", m.Message);
        Assert.Contains("bug", m.Remediation);
    }

    [Fact]
    public void Wire_names_round_trip()
    {
        foreach (var kind in Enum.GetValues<ErrorKind>()) Assert.Equal(kind, ErrorKinds.FromWireName(kind.WireName()));
        Assert.Equal(ErrorKind.Permanent, ErrorKinds.FromWireName("no-such-kind"));
    }
}

using Microagent.Access;
using Microagent.Errors;

namespace Microagent.Tests.Access;

/// <summary>Allowed host targets: HOST:PORT and CIDR:PORT forms, exact matching, and denials that name what is allowed.</summary>
public sealed class HostTargetsTests
{
    [Theory]
    [InlineData("127.0.0.1:8080", "127.0.0.1", 8080, true)]
    [InlineData("127.0.0.1:8080", "127.0.0.1", 8081, false)]
    [InlineData("127.0.0.1:8080", "127.0.0.2", 8080, false)]
    [InlineData("127.0.0.0/8:5432", "127.9.9.9", 5432, true)]
    [InlineData("127.0.0.0/8:5432", "10.0.0.1", 5432, false)]
    [InlineData("127.0.0.0/8:5432", "localhost", 5432, false)]
    [InlineData("localhost:80", "LOCALHOST", 80, true)]
    [InlineData("localhost:80", "127.0.0.1", 80, false)]
    [InlineData("[::1]:9000", "::1", 9000, true)]
    [InlineData("[::1]:9000", "[::1]", 9000, true)]
    [InlineData("[fd00::/8]:80", "fd12::3", 80, true)]
    public void Rules_match_only_their_host_and_port(string rule, string host, int port, bool matches) =>
        Assert.Equal(matches, HostTargetRule.Parse(rule).Matches(host, port));

    [Theory]
    [InlineData("127.0.0.1")]
    [InlineData("127.0.0.1:0")]
    [InlineData("127.0.0.1:70000")]
    [InlineData(":80")]
    [InlineData("::1:80")]
    [InlineData("127.0.0.1/40:80")]
    [InlineData("127.0.0.1:http")]
    public void Malformed_rules_are_invalid(string rule) =>
        Assert.Equal(ErrorKind.Invalid, Assert.ThrowsAny<MicroagentException>(() => HostTargetRule.Parse(rule)).Kind);

    [Fact]
    public void Denials_name_the_target_and_what_is_allowed()
    {
        var none = HostTargets.Parse([], "use --allow-host-target");
        var e = Assert.ThrowsAny<MicroagentException>(() => none.Check("127.0.0.1", 22, "vsock"));
        Assert.Equal(ErrorKind.PolicyDenied, e.Kind);
        Assert.Equal("vsock", e.Field);
        Assert.Contains("127.0.0.1:22", e.Message);
        Assert.Contains("none are allowed", e.Message);
        Assert.Equal("use --allow-host-target", e.Remediation);

        var some = HostTargets.Parse(["127.0.0.1:9", "[::1]:80"], "r");
        some.Check("127.0.0.1", 9, "mediation");
        Assert.Contains("allowed: 127.0.0.1:9, [::1]:80", Assert.ThrowsAny<MicroagentException>(() => some.Check("127.0.0.1", 22, "vsock")).Message);
    }
}

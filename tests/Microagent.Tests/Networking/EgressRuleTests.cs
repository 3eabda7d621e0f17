using System.Net;
using Microagent.Networking;
using Microagent.Workspaces;

namespace Microagent.Tests.Networking;

public sealed class EgressRuleTests
{
    [Theory]
    [InlineData("PyPI.org.", "Host", "pypi.org")]
    [InlineData(".GitHub.com", "Suffix", ".github.com")]
    [InlineData("203.0.113.7", "Ip", "203.0.113.7")]
    [InlineData("198.51.100.77/24", "Cidr", "198.51.100.0/24")]
    [InlineData("2001:db8::1", "Ip", "2001:db8::1")]
    [InlineData("2001:db8::/32", "Cidr", "2001:db8::/32")]
    public void Entries_parse_to_their_normal_form(string text, string kind, string normal)
    {
        var r = EgressRule.Parse(text);
        Assert.Equal((Enum.Parse<EgressRuleKind>(kind), normal), (r.Kind, r.ToString()));
    }

    [Theory]
    [InlineData("")]
    [InlineData("bad name")]
    [InlineData("-x.example")]
    [InlineData("10.0.0.0/33")]
    [InlineData("..example")]
    public void Bad_entries_name_the_field(string text) =>
        Assert.Equal("egress_allow", Assert.Throws<WorkspaceSpecException>(() => EgressRule.Parse(text)).Field);

    [Fact]
    public void A_suffix_covers_the_name_and_names_below_it_only()
    {
        var r = EgressRule.Parse(".example.com");
        Assert.True(r.MatchesName("example.com"));
        Assert.True(r.MatchesName("a.b.example.com"));
        Assert.False(r.MatchesName("badexample.com"));
        Assert.False(r.MatchesName("example.com.evil"));
        Assert.False(EgressRule.Parse("example.com").MatchesName("www.example.com"));
    }

    [Fact]
    public void Address_rules_match_ranges_and_mapped_forms()
    {
        var r = EgressRule.Parse("198.51.100.0/24");
        Assert.True(r.MatchesIp(IPAddress.Parse("198.51.100.200")));
        Assert.True(r.MatchesIp(IPAddress.Parse("::ffff:198.51.100.1")));
        Assert.False(r.MatchesIp(IPAddress.Parse("198.51.101.1")));
        Assert.False(r.MatchesName("198.51.100.1"));
    }
}

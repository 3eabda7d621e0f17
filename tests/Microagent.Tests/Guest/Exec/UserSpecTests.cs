using Microagent.Guest.Exec;

namespace Microagent.Tests.Guest.Exec;

public sealed class UserSpecTests : IDisposable
{
    private readonly string _etc = Directory.CreateTempSubdirectory("agent-etc").FullName;

    public UserSpecTests()
    {
        File.WriteAllText(Path.Combine(_etc, "passwd"), "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n");
        File.WriteAllText(Path.Combine(_etc, "group"), "root:x:0:\nalice:x:1000:\nwheel:x:10:alice,bob\ndocker:x:999:bob\nstaff:x:50:\n");
    }

    public void Dispose() => Directory.Delete(_etc, true);

    [Fact]
    public void NameResolvesUidGidHomeAndSupplementaryGroups()
    {
        UserSpec u = UserSpec.Resolve("alice", _etc);
        Assert.Equal((1000u, 1000u, "/home/alice"), (u.Uid, u.Gid, u.Home));
        Assert.Equal(new uint[] { 1000, 10 }, u.Groups);
    }

    [Fact]
    public void NumericForms()
    {
        Assert.Equal((1000u, 1000u), (UserSpec.Resolve("1000", _etc).Uid, UserSpec.Resolve("1000", _etc).Gid));
        UserSpec unknown = UserSpec.Resolve("4242", _etc);
        Assert.Equal((4242u, 4242u, 0), (unknown.Uid, unknown.Gid, unknown.Groups.Length));
        UserSpec pair = UserSpec.Resolve("5:staff", _etc);
        Assert.Equal((5u, 50u), (pair.Uid, pair.Gid));
    }

    [Theory]
    [InlineData("nobody-here")]
    [InlineData("")]
    [InlineData("1:2:3")]
    [InlineData("alice:nogroup")]
    public void BadUsersThrow(string user) => Assert.Throws<ExecStartException>(() => UserSpec.Resolve(user, _etc));
}

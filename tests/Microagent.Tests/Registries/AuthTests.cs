using Microagent.Registries;

namespace Microagent.Tests.Registries;

public sealed class AuthTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("microagent-auth-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    [Fact]
    public void ParsesBearerChallenges()
    {
        var c = AuthChallenge.Parse("Bearer realm=\"https://auth.docker.io/token\",service=\"registry.docker.io\",scope=\"repository:library/busybox:pull\"")!;
        Assert.Equal("Bearer", c.Scheme);
        Assert.Equal("https://auth.docker.io/token", c["realm"]);
        Assert.Equal("registry.docker.io", c["Service"]);
        Assert.Equal("repository:library/busybox:pull", c["scope"]);
    }

    [Fact]
    public void ParsesBasicAndUnquotedAndEscapedValues()
    {
        var b = AuthChallenge.Parse("Basic realm=\"Registry Realm\"")!;
        Assert.Equal(("Basic", "Registry Realm"), (b.Scheme, b["realm"]));
        var u = AuthChallenge.Parse("Bearer realm=http://x/t, error=insufficient_scope, x=\"a\\\"b,c\"")!;
        Assert.Equal(("http://x/t", "insufficient_scope", "a\"b,c"), (u["realm"], u["error"], u["x"]));
        Assert.Null(AuthChallenge.Parse(""));
        Assert.Empty(AuthChallenge.Parse("Negotiate")!.Parameters);
    }

    [Fact]
    public void StoreKeepsCredentialsPrivateAndNormalisesNames()
    {
        var store = new AuthStore(new StatePaths(_dir));
        store.Set("https://index.docker.io/v1/", new RegistryCredential("alice", "s3cr:et"));
        store.Set("127.0.0.1:5000", new RegistryCredential("bob", "pw"));
        Assert.Equal("s3cr:et", store.Get("docker.io")!.Secret);
        Assert.Equal(new[] { ("127.0.0.1:5000", "bob"), ("docker.io", "alice") }, store.List());
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(store.FilePath));
        Assert.DoesNotContain("s3cr", new RegistryCredential("alice", "s3cr:et").ToString());
        Assert.True(store.Remove("registry-1.docker.io"));
        Assert.False(store.Remove("docker.io"));
        Assert.Null(store.Get("docker.io"));
    }

    [Fact]
    public void PlainHttpOnlyForLoopbackOrNamedRegistries()
    {
        using var c = new RegistryClient(null, new RegistryOptions(["reg.lan:5000"]));
        Assert.Equal("http://127.0.0.1:5000/v2/", c.BaseUri("127.0.0.1:5000").ToString());
        Assert.Equal("http://localhost/v2/", c.BaseUri("localhost").ToString());
        Assert.Equal("http://[::1]:5000/v2/", c.BaseUri("[::1]:5000").ToString());
        Assert.Equal("http://reg.lan:5000/v2/", c.BaseUri("reg.lan:5000").ToString());
        Assert.Equal("https://ghcr.io/v2/", c.BaseUri("ghcr.io").ToString());
        Assert.Equal("https://registry-1.docker.io/v2/", c.BaseUri("docker.io").ToString());
    }
}

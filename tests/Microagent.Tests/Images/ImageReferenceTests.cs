using Microagent.Errors;
using Microagent.Images;

namespace Microagent.Tests.Images;

public sealed class ImageReferenceTests
{
    [Theory]
    [InlineData("busybox", "docker.io/library/busybox:latest")]
    [InlineData("ubuntu:22.04", "docker.io/library/ubuntu:22.04")]
    [InlineData("library/busybox", "docker.io/library/busybox:latest")]
    [InlineData("user/app:v1.2-rc_3", "docker.io/user/app:v1.2-rc_3")]
    [InlineData("docker.io/busybox", "docker.io/library/busybox:latest")]
    [InlineData("index.docker.io/library/busybox:1", "docker.io/library/busybox:1")]
    [InlineData("docker://busybox", "docker.io/library/busybox:latest")]
    [InlineData("127.0.0.1:5000/tools/python:3.11", "127.0.0.1:5000/tools/python:3.11")]
    [InlineData("localhost/app", "localhost/app:latest")]
    [InlineData("localhost:5000/a/b/c", "localhost:5000/a/b/c:latest")]
    [InlineData("ghcr.io/org/my-app__x.y", "ghcr.io/org/my-app__x.y:latest")]
    [InlineData("[::1]:5000/app:1", "[::1]:5000/app:1")]
    public void NormalisesLikeDocker(string input, string expected)
        => Assert.Equal(expected, ImageReference.Parse(input).ToString());

    [Fact]
    public void DigestsAndTagsCombine()
    {
        string hex = new('a', 64);
        var r = ImageReference.Parse($"reg.example:443/x/y:1@sha256:{hex}");
        Assert.Equal(("reg.example:443", "x/y", "1", "sha256:" + hex), (r.Registry, r.Repository, r.Tag, r.Digest));
        Assert.Equal("sha256:" + hex, r.ManifestReference);
        var d = ImageReference.Parse($"busybox@sha256:{hex}");
        Assert.Null(d.Tag);
        Assert.Equal($"docker.io/library/busybox@sha256:{hex}", d.ToString());
        Assert.Equal("registry-1.docker.io", d.ApiHost);
    }

    [Theory]
    [InlineData("", "empty")]
    [InlineData("Busybox", "lowercase")]
    [InlineData("busybox:", "tag")]
    [InlineData("busybox:-x", "tag")]
    [InlineData("a//b", "empty path component")]
    [InlineData("a/b/", "empty path component")]
    [InlineData("busybox@sha256:abc", "64")]
    [InlineData("busybox@md5:abcd", "not supported")]
    [InlineData("busybox@latest", "digest")]
    [InlineData("my_-app", "not a valid repository component")]
    [InlineData("host:port/app", "registry")]
    [InlineData("127.0.0.1:5000/", "missing")]
    public void MalformedReferencesSayWhatIsWrong(string input, string fragment)
    {
        var e = Assert.Throws<MicroagentException>(() => ImageReference.Parse(input));
        Assert.Equal(ErrorKind.Invalid, e.Kind);
        Assert.Contains(fragment, e.Message);
        Assert.NotNull(e.Remediation);
    }

    [Theory]
    [InlineData("oci:/some/dir:v1", typeof(ImageSource.Layout))]
    [InlineData("docker-archive:/x.tar", typeof(ImageSource.DockerArchive))]
    [InlineData("alpine", typeof(ImageSource.Registry))]
    public void SourcesByPrefix(string input, Type type) => Assert.IsType(type, ImageSource.Parse(input));

    [Fact]
    public void PlatformNames()
    {
        Assert.Equal("amd64", Platforms.Normalize("x86_64"));
        Assert.Equal("arm64", Platforms.Normalize("linux/aarch64"));
        Assert.Equal(Platforms.Host, Platforms.Normalize(null));
    }
}

using System.Text;
using Microagent.Errors;
using Microagent.Images;

namespace Microagent.Tests.Images;

public sealed class OciLayoutTests : IDisposable
{
    private readonly TempDir _tmp = new();

    public void Dispose() => _tmp.Dispose();

    private static byte[] OneFile(string content) => TestImages.Tar(w => w.File("f", content));

    [Fact]
    public void ResolvesManifestConfigAndLayers()
    {
        string dir = Path.Combine(_tmp.Path, "l");
        string md = TestImages.Layout(dir, [OneFile("a"), OneFile("b")], tag: "v1");
        var image = OciLayout.Open(dir).Resolve();
        Assert.Equal(md, image.ManifestDigest);
        Assert.Equal(2, image.Layers.Count);
        Assert.Equal(2, image.DiffIds.Count);
        Assert.Equal(new[] { "PATH=/bin", "A=b" }, image.Config.Env);
        Assert.Equal(new[] { "/bin/sh" }, image.Config.Cmd);
        Assert.Null(image.Config.Entrypoint);
        Assert.Equal("/w", image.Config.WorkingDir);
        Assert.Equal("1000", image.Config.User);
        Assert.Equal(md, OciLayout.Open(dir).Resolve("v1").ManifestDigest);
        var e = Assert.Throws<MicroagentException>(() => OciLayout.Open(dir).Resolve("nope"));
        Assert.Equal(ErrorKind.NotFound, e.Kind);
    }

    [Fact]
    public void NestedIndexPicksLinuxAmd64AndTagsSelect()
    {
        string dir = Path.Combine(_tmp.Path, "multi");
        Directory.CreateDirectory(dir);
        var (arm, armDigest) = TestImages.Manifest(dir, [OneFile("arm")], arch: "arm64");
        var (amd, amdDigest) = TestImages.Manifest(dir, [OneFile("amd")]);
        var (other, otherDigest) = TestImages.Manifest(dir, [OneFile("other")], cmd: "/other");
        byte[] nested = Encoding.UTF8.GetBytes("{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"manifests\":[" +
            TestImages.Descriptor(OciMediaTypes.ImageManifest, arm, armDigest, ",\"platform\":{\"architecture\":\"arm64\",\"os\":\"linux\"}") + "," +
            TestImages.Descriptor(OciMediaTypes.ImageManifest, amd, amdDigest, ",\"platform\":{\"architecture\":\"amd64\",\"os\":\"linux\"}") + "]}");
        string nestedDigest = TestImages.WriteBlob(dir, nested);
        File.WriteAllText(Path.Combine(dir, "oci-layout"), "{\"imageLayoutVersion\":\"1.0.0\"}");
        File.WriteAllText(Path.Combine(dir, "index.json"), "{\"schemaVersion\":2,\"manifests\":[" +
            TestImages.Descriptor(OciMediaTypes.ImageIndex, nested, nestedDigest, ",\"annotations\":{\"org.opencontainers.image.ref.name\":\"latest\"}") + "," +
            TestImages.Descriptor(OciMediaTypes.ImageManifest, other, otherDigest, ",\"annotations\":{\"org.opencontainers.image.ref.name\":\"other\"}") + "]}");

        var layout = OciLayout.Open(dir);
        Assert.Equal(amdDigest, layout.Resolve().ManifestDigest);
        Assert.Equal(otherDigest, layout.Resolve("other").ManifestDigest);
        Assert.Equal(new[] { "/other" }, layout.Resolve("other").Config.Cmd);
    }

    [Fact]
    public void CorruptBlobsAreDetected()
    {
        string dir = Path.Combine(_tmp.Path, "c");
        string md = TestImages.Layout(dir, [OneFile("a")]);
        string manifestPath = Path.Combine(dir, "blobs", "sha256", md[7..]);
        byte[] bytes = File.ReadAllBytes(manifestPath);
        bytes[^2] ^= 1; // same size, different digest
        File.WriteAllBytes(manifestPath, bytes);
        var e = Assert.Throws<MicroagentException>(() => OciLayout.Open(dir).Resolve());
        Assert.Equal(ErrorKind.Invalid, e.Kind);
        Assert.Contains("corrupt", e.Message);

        File.Delete(manifestPath);
        Assert.Equal(ErrorKind.NotFound, Assert.Throws<MicroagentException>(() => OciLayout.Open(dir).Resolve()).Kind);
        Assert.Equal(ErrorKind.NotFound, Assert.Throws<MicroagentException>(() => OciLayout.Open(_tmp.Sub("empty"))).Kind);
    }

    [Fact]
    public void VerifyingStreamChecksDigestAndSize()
    {
        byte[] data = Encoding.UTF8.GetBytes("hello");
        new VerifyingStream(new MemoryStream(data), TestImages.Sha(data), data.Length).DrainAndVerify();
        Assert.Throws<MicroagentException>(() => new VerifyingStream(new MemoryStream(data), TestImages.Sha([1]), data.Length).DrainAndVerify());
        Assert.Throws<MicroagentException>(() => new VerifyingStream(new MemoryStream(data), TestImages.Sha(data), 4).DrainAndVerify());
    }
}

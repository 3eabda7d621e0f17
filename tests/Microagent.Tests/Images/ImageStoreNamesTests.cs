using Microagent.Errors;
using Microagent.Images;

namespace Microagent.Tests.Images;

/// <summary><see cref="ImageStore.Tag"/>, <see cref="ImageStore.FindCached"/> and <see cref="ImageStore.Purge"/> on real baselines.</summary>
public sealed class ImageStoreNamesTests : IDisposable
{
    private readonly TempDir _tmp = new();
    private readonly StatePaths _paths;
    private static readonly BaselineOptions Small = new(HeadroomBytes: 16L << 20);

    public ImageStoreNamesTests() => _paths = new StatePaths(Path.Combine(_tmp.Path, "state"));

    public void Dispose() => _tmp.Dispose();

    [Fact]
    public async Task A_tag_names_the_same_baseline_and_untagging_keeps_it()
    {
        string layout = Path.Combine(_tmp.Path, "a");
        TestImages.Layout(layout, [TestImages.Tar(w => w.File("a", "a"))]);
        var store = new ImageStore(_paths, Small);
        Assert.Null(store.FindCached("oci:" + layout));
        var b = await store.EnsureBaselineAsync("oci:" + layout);
        Assert.Equal(b.ManifestDigest, store.FindCached("oci:" + layout)?.ManifestDigest);

        var t = store.Tag("oci:" + layout, "tools:dev");
        Assert.Equal(b.ManifestDigest, t.Digest);
        Assert.Equal("linux/amd64", t.Platform);
        Assert.Equal(b.ManifestDigest, store.Inspect(t.Target).Baseline.ManifestDigest);
        Assert.Equal(b.ManifestDigest, store.FindCached("tools:dev")?.ManifestDigest);
        Assert.Contains(t.Target, store.Inspect(b.ManifestDigest).References);

        Assert.Null(store.Remove(t.Target)); // another name still points at it: untagged only
        Assert.True(File.Exists(b.Path));
        Assert.Null(store.FindCached("tools:dev"));
    }

    [Fact]
    public async Task Tagging_refuses_a_source_form_as_the_new_name_and_an_unknown_image()
    {
        string layout = Path.Combine(_tmp.Path, "a");
        TestImages.Layout(layout, [TestImages.Tar(w => w.File("a", "a"))]);
        var store = new ImageStore(_paths, Small);
        await store.EnsureBaselineAsync("oci:" + layout);
        var bad = Assert.Throws<MicroagentException>(() => store.Tag("oci:" + layout, "oci:/elsewhere"));
        Assert.Equal((ErrorKind.Invalid, "target"), (bad.Kind, bad.Field));
        Assert.Equal(ErrorKind.NotFound, Assert.Throws<MicroagentException>(() => store.Tag("nothing:here", "x:1")).Kind);
    }

    [Fact]
    public async Task Purge_removes_every_unused_baseline_and_the_pulled_content()
    {
        string layout = Path.Combine(_tmp.Path, "a");
        TestImages.Layout(layout, [TestImages.Tar(w => w.File("a", new string('a', 100_000)))]);
        var store = new ImageStore(_paths, Small);
        var b = await store.EnsureBaselineAsync("oci:" + layout);
        Directory.CreateDirectory(store.ContentDir);
        File.WriteAllText(Path.Combine(store.ContentDir, "leftover"), "x");

        var purged = store.Purge();
        Assert.Equal(new[] { b.ManifestDigest }, purged.RemovedBaselines);
        Assert.True(purged.ReclaimedBytes > 0);
        Assert.Empty(store.List());
        Assert.False(Directory.Exists(store.ContentDir));
        Assert.Null(store.FindCached("oci:" + layout));
    }
}

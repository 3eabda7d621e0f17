using System.Diagnostics;
using Microagent.Errors;
using Microagent.Images;
using Xunit.Abstractions;

namespace Microagent.Tests.Images;

public sealed class ImageStoreTests : IDisposable
{
    private readonly TempDir _tmp = new();
    private readonly ITestOutputHelper _out;
    private readonly StatePaths _paths;

    public ImageStoreTests(ITestOutputHelper output)
    {
        _out = output;
        _paths = new StatePaths(Path.Combine(_tmp.Path, "state"));
    }

    public void Dispose() => _tmp.Dispose();

    private static readonly BaselineOptions Small = new(HeadroomBytes: 16L << 20);

    private static string Debugfs(string image, string request) => TestImages.Run("debugfs", "-R", request, image);

    [Fact]
    public async Task DefaultImageBaselineIsBuiltOnceAndHasBusybox()
    {
        string layout = Path.Combine(_tmp.Path, "default");
        var sw = Stopwatch.StartNew();
        TestImages.Run(Path.Combine(TestImages.RepoRoot(), "scripts", "build-default-image.sh"), layout);
        _out.WriteLine($"build-default-image.sh: {sw.ElapsedMilliseconds} ms");

        var store = new ImageStore(_paths, Small);
        sw.Restart();
        Baseline b = await store.EnsureBaselineAsync("oci:" + layout);
        _out.WriteLine($"baseline build: {sw.ElapsedMilliseconds} ms, apparent {b.SizeBytes >> 20} MiB, " +
            $"allocated {TestImages.Run("du", "-k", b.Path).Split('\t')[0]} KiB");

        Assert.Equal("oci:" + layout, b.ImageRef);
        Assert.Equal(new[] { "/bin/sh" }, b.Config.Cmd);
        Assert.Contains(b.Config.Env, e => e.StartsWith("PATH=", StringComparison.Ordinal));
        Assert.Equal($"{b.ManifestDigest[7..]}.ext4", Path.GetFileName(b.Path));
        Assert.Equal("0:0:600", TestImages.Stat(b.Path));

        string busybox = Debugfs(b.Path, "stat /bin/busybox");
        Assert.Matches(@"Type: regular\s+Mode:\s+0755", busybox);
        Assert.Matches(@"User:\s+0\s+Group:\s+0", busybox);
        Assert.Contains("Type: symlink", Debugfs(b.Path, "stat /bin/sh"));
        Assert.Matches(@"Mode:\s+01777", Debugfs(b.Path, "stat /tmp"));
        Assert.Contains("nobody:x:65534", Debugfs(b.Path, "cat /etc/passwd"));
        Assert.Matches(@"volume name:\s+rootfs", TestImages.Run("dumpe2fs", "-h", b.Path));

        // Second call: served from the cache, no staging left behind.
        sw.Restart();
        Baseline again = await store.EnsureBaselineAsync("oci:" + layout);
        _out.WriteLine($"cached lookup: {sw.ElapsedMilliseconds} ms");
        Assert.Equal((b.Path, b.ManifestDigest, b.SizeBytes, b.ImageRef), (again.Path, again.ManifestDigest, again.SizeBytes, again.ImageRef));
        Assert.Equal(b.Config.Cmd, again.Config.Cmd);
        Assert.Equal(b.Config.Env, again.Config.Env);
        Assert.Empty(Directory.GetFileSystemEntries(_paths.Tmp));

        // Overlay: instant, qcow2 on the raw baseline, 0600.
        string overlay = Path.Combine(_tmp.Path, "ws", "disk.qcow2");
        sw.Restart();
        await DiskOverlay.CreateAsync(b.Path, overlay);
        _out.WriteLine($"overlay: {sw.ElapsedMilliseconds} ms, {new FileInfo(overlay).Length} bytes");
        string info = TestImages.Run("qemu-img", "info", "--output=json", overlay);
        Assert.Contains("\"format\": \"qcow2\"", info);
        Assert.Contains($"\"backing-filename\": \"{b.Path}\"", info);
        Assert.Contains("\"backing-filename-format\": \"raw\"", info);
        Assert.Equal("0:0:600", TestImages.Stat(overlay));
        Assert.True(new FileInfo(overlay).Length < 1 << 20);
    }

    [Fact]
    public async Task ConcurrentCallersBuildOnceAndOwnershipSurvivesIntoExt4()
    {
        string layout = Path.Combine(_tmp.Path, "img");
        TestImages.Layout(layout,
        [
            TestImages.Tar(w =>
            {
                w.Dir("home/u", 0b111_101_000, uid: 1000, gid: 1000);
                w.File("home/u/f", "x", 0b100_111_101_101, uid: 1000, gid: 50);
                w.File("etc/hostname", "h");
                w.Symlink("hostroot", "/"); // must not be followed while measuring or building
            }),
            TestImages.Tar(w => { w.File("etc/.wh.hostname", ""); w.HardLink("home/u/g", "home/u/f"); }),
        ]);
        var store = new ImageStore(_paths, Small);
        var progress = new List<string>();
        var results = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ =>
            Task.Run(() => store.EnsureBaselineAsync($"oci:{layout}:latest", new Progress<string>(m => { lock (progress) progress.Add(m); })))));
        Assert.All(results, r => Assert.Equal(results[0].Path, r.Path));
        Assert.Single(Directory.GetFiles(store.BaselinesDir, "*.ext4"));
        Assert.Empty(Directory.GetFiles(store.BaselinesDir, "*.tmp", SearchOption.AllDirectories));

        string disk = results[0].Path;
        Assert.Matches(@"User:\s+1000\s+Group:\s+50", Debugfs(disk, "stat /home/u/f"));
        Assert.Matches(@"Mode:\s+04755", Debugfs(disk, "stat /home/u/f"));
        Assert.Matches(@"Links: 2", Debugfs(disk, "stat /home/u/g"));
        Assert.Matches(@"User:\s+1000\s+Group:\s+1000", Debugfs(disk, "stat /home/u"));
        Assert.Contains("File not found", Debugfs(disk, "stat /etc/hostname") + TestImages.Run("sh", "-c", $"debugfs -R 'stat /etc/hostname' {disk} 2>&1"));
        Assert.Contains("Type: symlink", Debugfs(disk, "stat /hostroot"));
    }

    [Fact]
    public async Task BadReferencesAreTypedErrors()
    {
        var store = new ImageStore(_paths, Small);
        Assert.Equal(ErrorKind.Invalid, (await Assert.ThrowsAsync<MicroagentException>(() => store.EnsureBaselineAsync("Docker.io/Library/Alpine:"))).Kind);
        Assert.Equal(ErrorKind.NotFound, (await Assert.ThrowsAsync<MicroagentException>(() => store.EnsureBaselineAsync("docker-archive:/nonexistent.tar"))).Kind);
        Assert.Equal(ErrorKind.NotFound, (await Assert.ThrowsAsync<MicroagentException>(() => store.EnsureBaselineAsync("oci:/nonexistent/x"))).Kind);

        string layout = Path.Combine(_tmp.Path, "hostile");
        TestImages.Layout(layout, [TestImages.Tar(w => w.File("../x", "x"))]);
        Assert.Equal(ErrorKind.Invalid, (await Assert.ThrowsAsync<MicroagentException>(() => store.EnsureBaselineAsync("oci:" + layout))).Kind);
        Assert.Empty(Directory.GetFileSystemEntries(_paths.Tmp)); // staging removed on failure
        Assert.Empty(Directory.GetFiles(store.BaselinesDir, "*.ext4"));
    }

    [Fact]
    public async Task OverlayOfMissingBaselineIsNotFound()
    {
        var e = await Assert.ThrowsAsync<MicroagentException>(() => DiskOverlay.CreateAsync(Path.Combine(_tmp.Path, "none.ext4"), Path.Combine(_tmp.Path, "o.qcow2")));
        Assert.Equal(ErrorKind.NotFound, e.Kind);
    }

    [Fact]
    public async Task PruneAndRmNeverRemoveABaselineAWorkspaceDiskUses()
    {
        string a = Path.Combine(_tmp.Path, "a"), b = Path.Combine(_tmp.Path, "b");
        TestImages.Layout(a, [TestImages.Tar(w => w.File("a", "a"))]);
        TestImages.Layout(b, [TestImages.Tar(w => w.File("b", "b"))]);
        var store = new ImageStore(_paths, Small);
        Baseline ba = await store.EnsureBaselineAsync("oci:" + a);
        Baseline bb = await store.EnsureBaselineAsync("oci:" + b);
        string disk = Path.Combine(_paths.Workspaces, "w1", "root.qcow2");
        await DiskOverlay.CreateAsync(ba.Path, disk);
        Assert.Equal(ba.Path, DiskOverlay.BackingFile(disk));

        Assert.Equal(2, store.List().Count);
        Assert.Equal(new[] { disk }, store.Inspect("oci:" + a).UsedBy);
        Assert.Equal(ErrorKind.Conflict, Assert.Throws<MicroagentException>(() => store.Remove("oci:" + a)).Kind);

        var pruned = store.Prune(all: true);
        Assert.Equal(new[] { bb.ManifestDigest }, pruned.RemovedBaselines);
        Assert.Equal(new[] { ba.ManifestDigest }, pruned.KeptInUse);
        Assert.True(File.Exists(ba.Path));
        Assert.False(File.Exists(bb.Path));

        File.Delete(disk);
        Assert.Equal(ba.Path, store.Remove(ba.ManifestDigest[..15]));
        Assert.Empty(store.List());
    }

    [Fact]
    public async Task DockerArchivesAreImported()
    {
        // docker save layout: manifest.json + config + uncompressed layer tars in per-layer directories.
        byte[] layer = TestImages.Tar(w => { w.File("etc/hello", "from docker"); w.File("bin/sh", "sh", 0b111_101_101); });
        byte[] config = System.Text.Encoding.UTF8.GetBytes($"{{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{{\"Cmd\":[\"/bin/sh\"]}},\"rootfs\":{{\"type\":\"layers\",\"diff_ids\":[\"{TestImages.Sha(layer)}\"]}}}}");
        string cfgName = TestImages.Sha(config)[7..] + ".json";
        string archive = Path.Combine(_tmp.Path, "saved.tar");
        File.WriteAllBytes(archive, TestImages.Tar(w =>
        {
            w.WriteEntry(new System.Formats.Tar.PaxTarEntry(System.Formats.Tar.TarEntryType.RegularFile, "abc/layer.tar") { DataStream = new MemoryStream(layer) });
            w.WriteEntry(new System.Formats.Tar.PaxTarEntry(System.Formats.Tar.TarEntryType.RegularFile, cfgName) { DataStream = new MemoryStream(config) });
            w.File("manifest.json", $"[{{\"Config\":\"{cfgName}\",\"RepoTags\":[\"app:1\"],\"Layers\":[\"abc/layer.tar\"]}}]");
        }));
        var store = new ImageStore(_paths, Small);
        Baseline bl = await store.EnsureBaselineAsync("docker-archive:" + archive);
        Assert.Equal(new[] { "/bin/sh" }, bl.Config.Cmd);
        Assert.Contains("from docker", Debugfs(bl.Path, "cat /etc/hello"));
        Assert.Equal("docker-archive:" + archive, Assert.Single(store.List()).References.Single());
    }
}

/// <summary>The default image named by <c>$MICROAGENT_DEFAULT_IMAGE</c>: sets a process-wide variable, so it runs alone.</summary>
[Collection(ProcessEnvironmentCollection.Name)]
public sealed class ImageStoreDefaultImageTests : IDisposable
{
    private readonly TempDir _tmp = new();

    public void Dispose() => _tmp.Dispose();

    [Fact]
    public async Task The_default_image_variable_names_the_layout_that_default_builds()
    {
        string layout = Path.Combine(_tmp.Path, "layout");
        TestImages.Layout(layout, [TestImages.Tar(w => w.File("etc/hello", "hello"))]);
        var store = new ImageStore(new StatePaths(Path.Combine(_tmp.Path, "state")), new BaselineOptions(HeadroomBytes: 16L << 20));
        Baseline direct = await store.EnsureBaselineAsync("oci:" + layout);

        string? previous = Environment.GetEnvironmentVariable(ImageStore.DefaultImageVariable);
        Environment.SetEnvironmentVariable(ImageStore.DefaultImageVariable, layout);
        try
        {
            Assert.Equal(layout, ImageStore.FindDefaultImageLayout());
            Baseline viaDefault = await store.EnsureBaselineAsync(null);
            Assert.Equal(direct.Path, viaDefault.Path);
            Assert.Equal("default", viaDefault.ImageRef);
        }
        finally { Environment.SetEnvironmentVariable(ImageStore.DefaultImageVariable, previous); }
    }
}

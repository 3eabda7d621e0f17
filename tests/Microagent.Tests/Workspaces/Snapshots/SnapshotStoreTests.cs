using Microagent.Errors;
using Microagent.Workspaces;
using Microagent.Workspaces.Snapshots;

namespace Microagent.Tests.Workspaces.Snapshots;

/// <summary>Snapshot files on a real filesystem (temp dir) and the manifest rule (docs/ARCHITECTURE.md "Snapshots").</summary>
public sealed class SnapshotStoreTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), $"ma-snap-{Guid.NewGuid():N}");
    private readonly SnapshotStore _store;

    public SnapshotStoreTests()
    {
        Directory.CreateDirectory(_dir);
        _store = new SnapshotStore(_dir);
    }

    public void Dispose() { if (Directory.Exists(_dir)) Directory.Delete(_dir, true); }

    private static SnapshotManifest Manifest(string tag, int minute = 0) => new()
    {
        Tag = tag, Created = new DateTimeOffset(2026, 12, 2, 14, minute, 0, TimeSpan.Zero), KernelSha256 = "aa11", KernelRelease = "6.1.0-57-cloud-amd64",
        QemuVersion = "10.0.2", MachineType = "pc-i440fx-10.0", CpuModel = "max", MemoryMiB = 256, Cpus = 1, AgentVersion = "1.0.0+abc",
        ImageDigest = "sha256:feed",
    };

    private SnapshotInfo Capture(string tag, string memory, int minute = 0)
    {
        string staging = _store.BeginCapture(tag);
        File.WriteAllText(Path.Combine(staging, SnapshotStore.MemoryFile), memory);
        File.WriteAllText(Path.Combine(staging, SnapshotStore.DiskFile), "disk");
        return _store.Commit(staging, Manifest(tag, minute));
    }

    [Fact]
    public void A_committed_capture_is_listed_with_its_manifest_and_size_and_its_files_are_0600()
    {
        var info = Capture("base", "0123456789");
        Assert.Equal(Path.Combine(_dir, "snapshots", "base"), info.Directory);
        Assert.Equal("aa11", info.Manifest.KernelSha256);
        Assert.True(info.SizeBytes > 14);
        foreach (string f in Directory.EnumerateFiles(info.Directory))
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(f));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(_store.Root));
        Assert.Equal(["base"], _store.List().Select(s => s.Manifest.Tag));
        Assert.Equal("base", _store.Get("w", "base").Manifest.Tag);
    }

    [Fact]
    public void A_capture_that_fails_half_way_keeps_the_previous_snapshot_of_the_tag()
    {
        Capture("t", "first");
        string staging = _store.BeginCapture("t");
        File.WriteAllText(Path.Combine(staging, SnapshotStore.MemoryFile), "half"); // QEMU died here
        Assert.Equal("first", File.ReadAllText(Path.Combine(_store.DirectoryOf("t"), SnapshotStore.MemoryFile)));
        SnapshotStore.Abandon(staging);
        Assert.False(Directory.Exists(staging));
        Assert.Equal("first", File.ReadAllText(Path.Combine(_store.DirectoryOf("t"), SnapshotStore.MemoryFile)));
        Assert.Single(_store.List());
    }

    [Fact]
    public void A_new_capture_replaces_the_tag_and_a_stale_staging_dir_is_not_a_snapshot()
    {
        Capture("t", "first");
        string stale = _store.BeginCapture("t"); // left by a killed capture
        Capture("t", "second", 1);
        Assert.False(Directory.Exists(stale));
        Assert.Equal("second", File.ReadAllText(Path.Combine(_store.DirectoryOf("t"), SnapshotStore.MemoryFile)));
        Assert.Equal(["t"], Directory.EnumerateDirectories(_store.Root).Select(Path.GetFileName));
    }

    [Fact]
    public void List_is_oldest_first_and_delete_removes_one()
    {
        Capture("later", "x", 5);
        Capture("earlier", "x", 1);
        Assert.Equal(["earlier", "later"], _store.List().Select(s => s.Manifest.Tag));
        Assert.True(_store.Delete("earlier"));
        Assert.False(_store.Delete("earlier"));
        Assert.Equal(["later"], _store.List().Select(s => s.Manifest.Tag));
        var e = Assert.Throws<SnapshotNotFoundException>(() => _store.Get("w", "earlier"));
        Assert.Equal(ErrorKind.NotFound, e.Kind);
        Assert.Contains("later", e.Remediation);
    }

    [Theory]
    [InlineData("")]
    [InlineData(".hidden")]
    [InlineData("../up")]
    [InlineData("a/b")]
    [InlineData("-flag")]
    public void Bad_tags_are_invalid(string tag)
    {
        var e = Assert.Throws<WorkspaceSpecException>(() => SnapshotStore.ValidateTag(tag));
        Assert.Equal(ErrorKind.Invalid, e.Kind);
    }

    [Fact]
    public void The_default_tag_is_a_valid_utc_timestamp()
    {
        string tag = SnapshotStore.DefaultTag(new DateTimeOffset(2026, 12, 2, 15, 4, 5, 678, TimeSpan.FromHours(1)));
        Assert.Equal("20261202-140405-678", tag);
        Assert.Equal(tag, SnapshotStore.ValidateTag(tag));
    }

    [Fact]
    public void A_manifest_mismatch_is_refused_naming_the_property_and_both_values()
    {
        var snapshot = Manifest("t");
        SnapshotCompatibility.EnsureLoadable("w", snapshot, snapshot with { Tag = "now", Created = DateTimeOffset.UnixEpoch });
        var kernel = Assert.Throws<SnapshotMismatchException>(() => SnapshotCompatibility.EnsureLoadable("w", snapshot, snapshot with { KernelSha256 = "bb22" }));
        Assert.Equal(ErrorKind.Conflict, kernel.Kind);
        Assert.Equal("kernel sha256", kernel.Property);
        Assert.Contains("aa11", kernel.Message);
        Assert.Contains("bb22", kernel.Message);
        var memory = Assert.Throws<SnapshotMismatchException>(() => SnapshotCompatibility.EnsureLoadable("w", snapshot, snapshot with { MemoryMiB = 512 }));
        Assert.Equal(("256 MiB", "512 MiB"), (memory.SnapshotValue, memory.WorkspaceValue));
        foreach (var other in new[] { snapshot with { QemuVersion = "10.1.0" }, snapshot with { MachineType = "pc-i440fx-10.1" },
                     snapshot with { CpuModel = "host" }, snapshot with { AgentVersion = "2" }, snapshot with { Cpus = 2 } })
            Assert.Throws<SnapshotMismatchException>(() => SnapshotCompatibility.EnsureLoadable("w", snapshot, other));
    }
}

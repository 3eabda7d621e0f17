using Microagent.Images;
using Microagent.Workspaces.Snapshots;
using Microagent.Workspaces.Templates;

namespace Microagent.Tests.Workspaces.Templates;

/// <summary>Warm-start template keys and the template store on real files (qcow2 made by qemu-img; docs/ARCHITECTURE.md "Warm start").</summary>
public sealed class TemplateStoreTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), $"ma-templates-{Guid.NewGuid():N}");
    private readonly StatePaths _paths;
    private readonly TemplateStore _store;

    public TemplateStoreTests()
    {
        _paths = new StatePaths(_root);
        _store = new TemplateStore(_paths);
    }

    public void Dispose() { if (Directory.Exists(_root)) Directory.Delete(_root, true); }

    private static TemplateManifest Target(string kernel = "k1", int memory = 256) => new TemplateManifest
    {
        Image = "busybox", ImageDigest = "sha256:" + new string('a', 64), SizeMiB = 1024, MemoryMiB = memory, Cpus = 1, KernelSha256 = kernel,
        Initramfs = "initrd-abc.cpio.gz", AgentBuild = "sha256:0123456789abcdef", QemuVersion = "10.0.2", MachineType = "pc-i440fx-10.0",
        CpuModel = "max", KernelArgs = "console=ttyS0 microagent.hostname=microagent",
    }.WithKey();

    /// <summary>A committed template of <paramref name="target"/> with a memory file and a real layer on a raw baseline.</summary>
    private async Task<TemplateManifest> MakeAsync(TemplateManifest target)
    {
        string baseline = Path.Combine(_root, "baseline.raw");
        if (!File.Exists(baseline)) { Directory.CreateDirectory(_root); await File.WriteAllBytesAsync(baseline, new byte[1 << 20]); }
        string staging = _store.BeginCapture(target.Key);
        await File.WriteAllBytesAsync(Path.Combine(staging, SnapshotStore.MemoryFile), [1, 2, 3]);
        string layer = DiskLayers.NewName();
        Directory.CreateDirectory(_store.LayersDir);
        await DiskOverlay.CreateAsync(baseline, Path.Combine(_store.LayersDir, layer));
        var m = target with { Created = DateTimeOffset.UtcNow, DiskLayer = layer };
        Assert.True(_store.Commit(staging, m));
        return m;
    }

    [Fact]
    public void The_key_is_stable_and_changes_with_every_property_a_restore_must_match()
    {
        var t = Target();
        Assert.Equal(t.Key, Target().Key);
        Assert.Matches("^[0-9a-f]{16}$", t.Key);
        TemplateManifest[] variants =
        [
            t with { ImageDigest = "sha256:" + new string('b', 64) }, t with { SizeMiB = 2048 }, t with { MemoryMiB = 512 }, t with { Cpus = 2 },
            t with { KernelSha256 = "k2" }, t with { Initramfs = "initrd-def.cpio.gz" }, t with { AgentBuild = "sha256:fedcba9876543210" },
            t with { QemuVersion = "10.1.0" }, t with { MachineType = "pc-i440fx-10.1" }, t with { CpuModel = "qemu64" },
            t with { KernelArgs = "console=ttyS0 microagent.hostname=other" },
        ];
        foreach (var v in variants) Assert.NotEqual(t.Key, v.KeyOf());
        Assert.Equal(t.Key, (t with { Image = "another-name", Created = DateTimeOffset.UnixEpoch, CapturedBy = "ws" }).KeyOf()); // not restore-relevant
    }

    [Fact]
    public async Task A_committed_template_is_found_and_listed_and_one_whose_kernel_hash_differs_is_not_used()
    {
        var m = await MakeAsync(Target());
        Assert.Equal(m, _store.Find(m.Key, Target(), out _));
        var listed = Assert.Single(_store.List(_ => Target()));
        Assert.Null(listed.Stale);
        Assert.True(listed.SizeBytes > 3);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(_store.DirectoryOf(m.Key)));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(_store.MemoryPath(m.Key)));

        // The host's kernel changed: the stored template is stale, never restored.
        Assert.Null(_store.Find(m.Key, Target(kernel: "k2"), out string why));
        Assert.Contains("kernel sha256 k1", why);
        Assert.Contains("k2", why);
        Assert.Contains("kernel sha256", Assert.Single(_store.List(_ => Target(kernel: "k2"))).Stale);

        // A manifest edited in place no longer matches its key.
        File.WriteAllText(Path.Combine(_store.DirectoryOf(m.Key), SnapshotStore.ManifestFile),
            File.ReadAllText(Path.Combine(_store.DirectoryOf(m.Key), SnapshotStore.ManifestFile)).Replace("\"k1\"", "\"k9\""));
        Assert.Null(_store.Find(m.Key, Target(), out why));
        Assert.Contains("does not match its key", why);
    }

    [Fact]
    public async Task A_second_maker_loses_to_a_current_template_and_replaces_a_stale_one()
    {
        var first = await MakeAsync(Target());
        string staging = _store.BeginCapture(first.Key);
        Assert.False(_store.Commit(staging, first with { CapturedBy = "second" }));
        Assert.False(Directory.Exists(staging));
        Assert.Null(_store.Read(first.Key)!.CapturedBy);

        File.Delete(_store.MemoryPath(first.Key)); // incomplete: the next capture replaces it
        Assert.Null(_store.Find(first.Key, Target(), out string why));
        Assert.Contains("incomplete", why);
        staging = _store.BeginCapture(first.Key);
        await File.WriteAllBytesAsync(Path.Combine(staging, SnapshotStore.MemoryFile), [4]);
        Assert.True(_store.Commit(staging, first with { CapturedBy = "third" }));
        Assert.Equal("third", _store.Find(first.Key, Target(), out _)!.CapturedBy);
        Assert.Empty(Directory.EnumerateDirectories(_store.Root, ".*"));
    }

    [Fact]
    public async Task The_capture_lock_is_exclusive_and_a_locked_template_is_not_deleted()
    {
        var m = await MakeAsync(Target());
        using (var held = _store.TryLock(m.Key))
        {
            Assert.NotNull(held);
            Assert.Null(_store.TryLock(m.Key));
            Assert.False(_store.Delete(m.Key));
        }
        Assert.True(_store.Delete(m.Key));
        Assert.Null(_store.Read(m.Key));
    }

    [Fact]
    public async Task A_deleted_templates_layer_stays_while_a_workspace_disk_reads_it()
    {
        var kept = await MakeAsync(Target());
        var gone = await MakeAsync(Target(memory: 512));
        string ws = Path.Combine(_paths.Workspaces, "warm");
        Directory.CreateDirectory(ws);
        await DiskOverlay.CreateAsync(_store.LayerPath(kept), Path.Combine(ws, "root.qcow2"), backingFormat: "qcow2");
        Assert.Equal(["warm"], _store.List().Single(t => t.Manifest.Key == kept.Key).UsedBy);
        Assert.Contains(Path.GetFullPath(_store.LayerPath(kept)), Microagent.Workspaces.WorkspaceLayout.AllDisks(_paths)); // baselines under it stay in use

        Assert.True(_store.Delete(kept.Key));
        Assert.True(_store.Delete(gone.Key));
        Assert.True(_store.PruneLayers() > 0);
        Assert.True(File.Exists(_store.LayerPath(kept)));
        Assert.False(File.Exists(_store.LayerPath(gone)));

        File.Delete(Path.Combine(ws, "root.qcow2"));
        _store.PruneLayers();
        Assert.False(File.Exists(_store.LayerPath(kept)));
    }
}

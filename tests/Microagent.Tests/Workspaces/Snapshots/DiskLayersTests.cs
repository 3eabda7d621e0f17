using Microagent.Images;
using Microagent.Workspaces.Snapshots;

namespace Microagent.Tests.Workspaces.Snapshots;

/// <summary>Which frozen layers are needed and by whom, on real qcow2 files made by qemu-img (docs/ARCHITECTURE.md "Snapshots").</summary>
public sealed class DiskLayersTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), $"ma-layers-{Guid.NewGuid():N}");
    private readonly StatePaths _paths;
    private readonly string _src, _fork;

    public DiskLayersTests()
    {
        _paths = new StatePaths(_root);
        _src = Path.Combine(_paths.Workspaces, "src");
        _fork = Path.Combine(_paths.Workspaces, "fork");
        Directory.CreateDirectory(DiskLayers.Dir(_src));
        Directory.CreateDirectory(_fork);
    }

    public void Dispose() { if (Directory.Exists(_root)) Directory.Delete(_root, true); }

    private async Task<string> BaselineAsync()
    {
        string raw = Path.Combine(_root, "baseline.raw");
        await File.WriteAllBytesAsync(raw, new byte[1 << 20]);
        return raw;
    }

    [Fact]
    public async Task A_fork_on_a_layer_is_a_dependent_and_keeps_it_while_an_unused_layer_is_pruned()
    {
        string baseline = await BaselineAsync();
        string used = DiskLayers.PathOf(_src, "used.qcow2"), unused = DiskLayers.PathOf(_src, "unused.qcow2");
        await DiskOverlay.CreateAsync(baseline, used);
        await DiskOverlay.CreateAsync(baseline, unused);
        await DiskOverlay.CreateAsync(used, Path.Combine(_src, "root.qcow2"), backingFormat: "qcow2");
        Assert.Empty(DiskLayers.Dependents(_paths, _src));

        await DiskOverlay.CreateAsync(used, Path.Combine(_fork, "root.qcow2"), backingFormat: "qcow2");
        Assert.Equal(["fork"], DiskLayers.Dependents(_paths, _src));
        Assert.Equal([Path.GetFullPath(Path.Combine(_fork, "root.qcow2")), used, Path.GetFullPath(baseline)], DiskLayers.Chain(Path.Combine(_fork, "root.qcow2")));

        Assert.True(DiskLayers.Prune(_paths, _src, []) > 0);
        Assert.True(File.Exists(used));
        Assert.False(File.Exists(unused));
    }

    [Fact]
    public void A_fork_waiting_for_its_first_restore_is_a_dependent_and_its_restore_round_trips()
    {
        var pending = new PendingRestore { SnapshotDir = Path.Combine(_src, "snapshots", "base"), Source = "src", Tag = "base", Fork = true };
        pending.Write(_fork);
        Assert.Equal(pending, PendingRestore.Read(_fork));
        Assert.Equal("src:base", pending.Label);
        Assert.Equal(["fork"], DiskLayers.Dependents(_paths, _src));
        PendingRestore.Clear(_fork);
        Assert.Null(PendingRestore.Read(_fork));
        Assert.Empty(DiskLayers.Dependents(_paths, _src));
    }
}

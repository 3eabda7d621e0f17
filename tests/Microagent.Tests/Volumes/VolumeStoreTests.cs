using Microagent.Errors;
using Microagent.Volumes;

namespace Microagent.Tests.Volumes;

/// <summary>Named volumes with the real mke2fs, in a private state directory.</summary>
public sealed class VolumeStoreTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("ma-volstore-").FullName;
    private readonly StatePaths _paths;
    private readonly VolumeStore _store;

    public VolumeStoreTests()
    {
        _paths = new StatePaths(_dir);
        _store = new VolumeStore(_paths);
    }

    public void Dispose() => Directory.Delete(_dir, true);

    [Fact]
    public async Task Create_list_inspect_delete()
    {
        var v = await _store.CreateAsync("data", 32);
        Assert.Equal(("data", 32), (v.Name, v.SizeMiB));
        Assert.Equal("ext4", Ext4Probe.Identify(v.Path));
        Assert.Equal(32L << 20, new FileInfo(v.Path).Length);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(v.Path));
        Assert.False(v.InUse);
        Assert.Empty(v.UsedBy);
        Assert.Equal(["data"], _store.List().Select(x => x.Name));
        Assert.Equal(ErrorKind.Conflict, (await Assert.ThrowsAsync<MicroagentException>(() => _store.CreateAsync("data", 32))).Kind);

        var deleted = await _store.DeleteAsync("data");
        Assert.True(deleted.Existed);
        Assert.False(File.Exists(v.Path));
        Assert.False((await _store.DeleteAsync("data")).Existed);
        Assert.Equal(ErrorKind.NotFound, Assert.Throws<MicroagentException>(() => _store.Inspect("data")).Kind);
        Assert.Contains("volume create data", Assert.Throws<MicroagentException>(() => _store.RequireImage("data")).Remediation);
    }

    [Fact]
    public async Task A_volume_attached_to_a_running_workspace_is_never_deleted()
    {
        var v = await _store.CreateAsync("busy", 16);
        using (var held = DiskLock.TryAcquire(DiskLock.PathFor(_paths, v.Path), exclusive: false))
        {
            Assert.True(_store.Inspect("busy").InUse);
            var e = await Assert.ThrowsAnyAsync<MicroagentException>(() => _store.DeleteAsync("busy", force: true));
            Assert.Equal(ErrorKind.Conflict, e.Kind);
            Assert.Contains("halt", e.Remediation);
        }
        Assert.True((await _store.DeleteAsync("busy")).Existed);
    }

    [Theory]
    [InlineData("../x")]
    [InlineData("a/b")]
    [InlineData("")]
    [InlineData(".hidden")]
    public async Task Bad_names_are_invalid(string name) =>
        Assert.Equal(ErrorKind.Invalid, (await Assert.ThrowsAnyAsync<MicroagentException>(() => _store.CreateAsync(name, 16))).Kind);

    [Fact]
    public async Task Size_out_of_range_is_invalid() =>
        Assert.Equal(ErrorKind.Invalid, (await Assert.ThrowsAnyAsync<MicroagentException>(() => _store.CreateAsync("tiny", 1))).Kind);
}

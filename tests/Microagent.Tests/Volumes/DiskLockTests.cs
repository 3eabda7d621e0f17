using Microagent.Volumes;

namespace Microagent.Tests.Volumes;

public sealed class DiskLockTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("ma-disklock-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    [Fact]
    public void Readers_share_and_a_writer_excludes_everyone()
    {
        var paths = new StatePaths(_dir);
        string disk = Path.Combine(_dir, "d.ext4");
        File.WriteAllText(disk, "");
        string lockPath = DiskLock.PathFor(paths, disk);
        using (var r1 = DiskLock.TryAcquire(lockPath, exclusive: false))
        using (var r2 = DiskLock.TryAcquire(lockPath, exclusive: false))
        {
            Assert.NotNull(r1);
            Assert.NotNull(r2);
            Assert.Null(DiskLock.TryAcquire(lockPath, exclusive: true));
            Assert.True(DiskLock.IsHeld(lockPath));
        }
        using (var w = DiskLock.TryAcquire(lockPath, exclusive: true))
        {
            Assert.NotNull(w);
            Assert.Null(DiskLock.TryAcquire(lockPath, exclusive: false));
            Assert.Null(DiskLock.TryAcquire(lockPath, exclusive: true));
        }
        Assert.False(DiskLock.IsHeld(lockPath));
    }

    [Fact]
    public void Two_spellings_of_one_file_share_a_lock()
    {
        var paths = new StatePaths(_dir);
        string disk = Path.Combine(_dir, "d.ext4");
        File.WriteAllText(disk, "");
        string link = Path.Combine(_dir, "link.ext4");
        File.CreateSymbolicLink(link, disk);
        Assert.Equal(DiskLock.PathFor(paths, disk), DiskLock.PathFor(paths, link));
        Assert.Equal(DiskLock.PathFor(paths, disk), DiskLock.PathFor(paths, Path.Combine(_dir, ".", "d.ext4")));
    }
}

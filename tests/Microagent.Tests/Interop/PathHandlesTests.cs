using Microagent.Interop;

namespace Microagent.Tests.Interop;

/// <summary>O_PATH descriptors: what they pin, what the kernel names them, and the calls that never follow a final symlink.</summary>
public sealed class PathHandlesTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("ma-ph-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void An_opened_path_is_named_by_its_real_path_and_stats_through_the_descriptor()
    {
        string file = Path.Combine(_dir, "f");
        File.WriteAllText(file, "12345");
        File.CreateSymbolicLink(Path.Combine(_dir, "l"), "f");
        var (fd, errno) = PathHandles.TryOpenPath(Path.Combine(_dir, "l"), directory: false);
        Assert.Equal(0, errno);
        using (fd)
        {
            Assert.Equal(file, PathHandles.RealPath(fd!));
            var st = PathHandles.Stat(fd!);
            Assert.True(st.IsRegularFile);
            Assert.Equal(5, st.Size);
            using var r = new StreamReader(new FileStream(PathHandles.OpenForRead(fd!), FileAccess.Read));
            Assert.Equal("12345", r.ReadToEnd());
        }
        Assert.Equal(Errno.ENOENT, PathHandles.TryOpenPath(Path.Combine(_dir, "none"), directory: false).Errno);
        Assert.Equal(Errno.ENOTDIR, PathHandles.TryOpenPath(file, directory: true).Errno);
    }

    [Fact]
    public void StatAt_and_OpenPathAt_see_a_final_symlink_itself_unless_asked_to_follow()
    {
        File.CreateSymbolicLink(Path.Combine(_dir, "l"), "/");
        var (dir, _) = PathHandles.TryOpenPath(_dir, directory: true);
        using (dir)
        {
            Assert.True(PathHandles.StatAt(dir!, "l")!.Value.IsSymbolicLink);
            Assert.Null(PathHandles.StatAt(dir!, "none"));
            var (followed, _) = PathHandles.TryOpenPathAt(dir!, "l", follow: true);
            using (followed) Assert.Equal("/", PathHandles.RealPath(followed!));
            var (link, _) = PathHandles.TryOpenPathAt(dir!, "l", follow: false);
            using (link) Assert.True(PathHandles.Stat(link!).IsSymbolicLink);
        }
    }

    [Fact]
    public void Mkdir_reports_anything_already_there_and_proc_magic_links_are_refused()
    {
        File.CreateSymbolicLink(Path.Combine(_dir, "l"), Path.Combine(_dir, "target"));
        Assert.Equal(Errno.EEXIST, PathHandles.TryMkdir(Path.Combine(_dir, "l"), 0x1C0));
        Assert.False(Directory.Exists(Path.Combine(_dir, "target")));
        Assert.Equal(0, PathHandles.TryMkdir(Path.Combine(_dir, "new"), 0x1C0));
        Assert.Equal(Errno.ELOOP, PathHandles.TryOpenPath($"/proc/self/root{_dir}", directory: true).Errno);
    }

    [Fact]
    public void A_deleted_file_has_no_name()
    {
        string file = Path.Combine(_dir, "gone");
        File.WriteAllText(file, "x");
        var (fd, _) = PathHandles.TryOpenPath(file, directory: false);
        using (fd)
        {
            File.Delete(file);
            Assert.Null(PathHandles.RealPath(fd!));
        }
    }
}

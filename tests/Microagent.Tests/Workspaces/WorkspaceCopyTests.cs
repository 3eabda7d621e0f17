using System.Text;
using Microagent.Workspaces;

namespace Microagent.Tests.Workspaces;

/// <summary>Host-side archives of <c>cp</c>: round trips, and refusal of anything that would escape the destination.</summary>
public sealed class WorkspaceCopyTests : IDisposable
{
    private readonly string _root = Path.Combine("/tmp", $"ma-ut-{Guid.NewGuid():N}"[..16]);

    public void Dispose() { if (Directory.Exists(_root)) Directory.Delete(_root, true); }

    [Fact]
    public void Archives_round_trip_with_modes_and_links()
    {
        string src = Path.Combine(_root, "src");
        Directory.CreateDirectory(Path.Combine(src, "sub"));
        File.WriteAllText(Path.Combine(src, "x.sh"), "echo");
        File.SetUnixFileMode(Path.Combine(src, "x.sh"), (UnixFileMode)0b111_101_000);
        File.WriteAllText(Path.Combine(src, "sub", "y"), "yy");
        File.CreateSymbolicLink(Path.Combine(src, "link"), "x.sh");
        var ms = new MemoryStream();
        var (entries, bytes) = WorkspaceCopy.WriteArchive(src, ms);
        Assert.Equal(5, entries);
        Assert.Equal(6, bytes);
        ms.Position = 0;
        string dest = Path.Combine(_root, "dest");
        var (target, n, _) = WorkspaceCopy.ExtractArchive(ms, WorkspaceCopy.Staged, dest);
        Assert.Equal(dest, target);
        Assert.Equal(5, n);
        Assert.Equal((UnixFileMode)0b111_101_000, File.GetUnixFileMode(Path.Combine(dest, "x.sh")));
        Assert.Equal("x.sh", new FileInfo(Path.Combine(dest, "link")).LinkTarget);
        Assert.Equal("yy", File.ReadAllText(Path.Combine(dest, "sub", "y")));
    }

    [Fact]
    public void Archives_that_escape_are_refused()
    {
        var ms = new MemoryStream();
        using (var w = new System.Formats.Tar.TarWriter(ms, leaveOpen: true))
        {
            var e = new System.Formats.Tar.PaxTarEntry(System.Formats.Tar.TarEntryType.RegularFile, "payload/../../evil");
            w.WriteEntry(e);
        }
        ms.Position = 0;
        Directory.CreateDirectory(_root);
        Assert.Throws<WorkspaceCopyException>(() => WorkspaceCopy.ExtractArchive(ms, "payload", Path.Combine(_root, "d")));
    }

    private static readonly DateTime SentinelTime = new(2001, 2, 3, 4, 5, 6, DateTimeKind.Utc);

    /// <summary>A stand-in for the host user's home, outside the copy destination: ~/.bashrc (0644) and ~/.ssh (0700).</summary>
    private string MakeHostHome()
    {
        string home = Path.Combine(_root, "home");
        Directory.CreateDirectory(Path.Combine(home, ".ssh"));
        File.SetUnixFileMode(Path.Combine(home, ".ssh"), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        string rc = Path.Combine(home, ".bashrc");
        File.WriteAllText(rc, "original");
        File.SetUnixFileMode(rc, (UnixFileMode)0b110_100_100);
        File.SetLastWriteTimeUtc(rc, SentinelTime);
        return home;
    }

    private static void AssertHostHomeUntouched(string home)
    {
        Assert.Equal([".bashrc", ".ssh"], Directory.GetFileSystemEntries(home).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        string rc = Path.Combine(home, ".bashrc");
        Assert.Equal("original", File.ReadAllText(rc));
        Assert.Equal((UnixFileMode)0b110_100_100, File.GetUnixFileMode(rc));
        Assert.Equal(SentinelTime, File.GetLastWriteTimeUtc(rc));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(Path.Combine(home, ".ssh")));
        Assert.Empty(Directory.GetFileSystemEntries(Path.Combine(home, ".ssh")));
    }

    private static MemoryStream GuestTar(Action<System.Formats.Tar.TarWriter> build)
    {
        var ms = new MemoryStream();
        using (var w = new System.Formats.Tar.TarWriter(ms, System.Formats.Tar.TarEntryFormat.Pax, leaveOpen: true)) build(w);
        ms.Position = 0;
        return ms;
    }

    private static void Entry(System.Formats.Tar.TarWriter w, System.Formats.Tar.TarEntryType type, string name,
        string? link = null, string? content = null, int mode = 0b110_100_100)
    {
        var e = new System.Formats.Tar.PaxTarEntry(type, name) { Mode = (UnixFileMode)mode };
        if (link is not null) e.LinkName = link;
        if (content is not null) e.DataStream = new MemoryStream(Encoding.UTF8.GetBytes(content));
        w.WriteEntry(e);
    }

    public static TheoryData<string> HostileGuestArchives => new()
    {
        "symlink-then-write-through", "root-symlink-then-write-through", "symlink-then-dir-chmod-through", "nested-symlink-then-write",
        "hardlink-absolute", "hardlink-dotdot", "hardlink-member-dotdot", "hardlink-through-symlink", "hardlink-to-symlink",
    };

    /// <summary>An archive from an untrusted guest can never read, write or chmod anything outside the destination.</summary>
    [Theory]
    [MemberData(nameof(HostileGuestArchives))]
    public void Hostile_guest_archives_are_refused_and_nothing_outside_changes(string kind)
    {
        const System.Formats.Tar.TarEntryType Dir = System.Formats.Tar.TarEntryType.Directory;
        const System.Formats.Tar.TarEntryType Reg = System.Formats.Tar.TarEntryType.RegularFile;
        const System.Formats.Tar.TarEntryType Sym = System.Formats.Tar.TarEntryType.SymbolicLink;
        const System.Formats.Tar.TarEntryType Hard = System.Formats.Tar.TarEntryType.HardLink;
        string home = MakeHostHome();
        string dest = Path.Combine(_root, "dest");
        Directory.CreateDirectory(dest);
        var tar = GuestTar(w =>
        {
            switch (kind)
            {
                case "symlink-then-write-through":
                    Entry(w, Dir, "payload/", mode: 0b111_101_101);
                    Entry(w, Sym, "payload/l", link: home);
                    Entry(w, Reg, "payload/l/.bashrc", content: "pwned", mode: 0b111_111_111);
                    break;
                case "root-symlink-then-write-through":
                    Entry(w, Sym, "payload", link: home);
                    Entry(w, Reg, "payload/.bashrc", content: "pwned");
                    break;
                case "symlink-then-dir-chmod-through":
                    Entry(w, Dir, "payload/", mode: 0b111_101_101);
                    Entry(w, Sym, "payload/l", link: home);
                    Entry(w, Dir, "payload/l/.ssh/", mode: 0b111_111_111);
                    break;
                case "nested-symlink-then-write":
                    Entry(w, Dir, "payload/", mode: 0b111_101_101);
                    Entry(w, Dir, "payload/a/", mode: 0b111_101_101);
                    Entry(w, Sym, "payload/a/up", link: "../../../home");
                    Entry(w, Reg, "payload/a/up/.ssh/authorized_keys", content: "ssh-ed25519 AAAA attacker");
                    break;
                case "hardlink-absolute":
                    Entry(w, Dir, "payload/", mode: 0b111_101_101);
                    Entry(w, Hard, "payload/h", link: Path.Combine(home, ".bashrc"));
                    break;
                case "hardlink-dotdot":
                    Entry(w, Dir, "payload/", mode: 0b111_101_101);
                    Entry(w, Hard, "payload/h", link: "../../home/.bashrc");
                    break;
                case "hardlink-member-dotdot":
                    Entry(w, Dir, "payload/", mode: 0b111_101_101);
                    Entry(w, Hard, "payload/h", link: "payload/../../home/.bashrc");
                    break;
                case "hardlink-through-symlink":
                    Entry(w, Dir, "payload/", mode: 0b111_101_101);
                    Entry(w, Sym, "payload/l", link: home);
                    Entry(w, Hard, "payload/h", link: "payload/l/.bashrc");
                    break;
                case "hardlink-to-symlink":
                    Entry(w, Dir, "payload/", mode: 0b111_101_101);
                    Entry(w, Sym, "payload/l", link: Path.Combine(home, ".bashrc"));
                    Entry(w, Hard, "payload/h", link: "payload/l");
                    break;
                default:
                    throw new ArgumentOutOfRangeException(nameof(kind));
            }
        });
        Assert.Throws<WorkspaceCopyException>(() => WorkspaceCopy.ExtractArchive(tar, "payload", dest));
        AssertHostHomeUntouched(home);
        Assert.False(File.Exists(Path.Combine(dest, "payload", "h")), "no hard-link copy may read a host file into the destination");
        Assert.Equal(["dest", "home"], Directory.GetFileSystemEntries(_root).Select(Path.GetFileName).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void Guest_archives_keep_symlinks_as_links_and_in_tree_hard_links()
    {
        string home = MakeHostHome();
        string dest = Path.Combine(_root, "dest");
        Directory.CreateDirectory(dest);
        var tar = GuestTar(w =>
        {
            Entry(w, System.Formats.Tar.TarEntryType.Directory, "proj/", mode: 0b111_000_000);
            Entry(w, System.Formats.Tar.TarEntryType.RegularFile, "proj/f", content: "data", mode: 0b111_101_000);
            Entry(w, System.Formats.Tar.TarEntryType.HardLink, "proj/h", link: "proj/f");
            Entry(w, System.Formats.Tar.TarEntryType.SymbolicLink, "proj/home", link: home);
            Entry(w, System.Formats.Tar.TarEntryType.SymbolicLink, "proj/rc", link: Path.Combine(home, ".bashrc"));
        });
        var (target, n, _) = WorkspaceCopy.ExtractArchive(tar, "proj", dest);
        Assert.Equal(Path.Combine(dest, "proj"), target);
        Assert.Equal(5, n);
        Assert.Equal("data", File.ReadAllText(Path.Combine(target, "h")));
        Assert.Equal(home, new FileInfo(Path.Combine(target, "home")).LinkTarget);
        Assert.Equal(Path.Combine(home, ".bashrc"), new FileInfo(Path.Combine(target, "rc")).LinkTarget);
        Assert.Equal((UnixFileMode)0b111_000_000, File.GetUnixFileMode(target));
        AssertHostHomeUntouched(home);
    }

    [Theory]
    [InlineData("/")]
    [InlineData("..")]
    [InlineData(".")]
    public void Guest_root_names_that_are_not_a_single_component_are_refused(string rootName)
    {
        string dest = Path.Combine(_root, "dest");
        Directory.CreateDirectory(dest);
        var tar = GuestTar(w => Entry(w, System.Formats.Tar.TarEntryType.RegularFile, "//x", content: "pwned"));
        Assert.Throws<WorkspaceCopyException>(() => WorkspaceCopy.ExtractArchive(tar, rootName, dest));
        Assert.Empty(Directory.GetFileSystemEntries(dest));
    }

    [Fact]
    public void Exclusive_extraction_refuses_anything_already_at_the_target_and_writes_nothing_through_it()
    {
        string outside = Directory.CreateDirectory(Path.Combine(_root, "outside")).FullName;
        File.WriteAllText(Path.Combine(outside, "secret"), "secret");
        string dest = Directory.CreateDirectory(Path.Combine(_root, "dest")).FullName;
        File.WriteAllText(Path.Combine(dest, "file"), "old");
        File.CreateSymbolicLink(Path.Combine(dest, "link"), Path.Combine(outside, "secret"));
        File.CreateSymbolicLink(Path.Combine(dest, "dirlink"), outside);
        MemoryStream File1() => GuestTar(w => Entry(w, System.Formats.Tar.TarEntryType.RegularFile, "x", content: "new"));
        MemoryStream Dir1() => GuestTar(w =>
        {
            Entry(w, System.Formats.Tar.TarEntryType.Directory, "x", mode: 0b111_101_101);
            Entry(w, System.Formats.Tar.TarEntryType.RegularFile, "x/secret", content: "new");
        });
        foreach (string name in new[] { "file", "link", "dirlink" })
        {
            Assert.Equal(Microagent.Errors.ErrorKind.Conflict, Assert.ThrowsAny<Microagent.Errors.MicroagentException>(() =>
                WorkspaceCopy.ExtractTo(File1(), "x", Path.Combine(dest, name), exclusive: true)).Kind);
            Assert.Equal(Microagent.Errors.ErrorKind.Conflict, Assert.ThrowsAny<Microagent.Errors.MicroagentException>(() =>
                WorkspaceCopy.ExtractTo(Dir1(), "x", Path.Combine(dest, name), exclusive: true)).Kind);
        }
        Assert.Equal("old", File.ReadAllText(Path.Combine(dest, "file")));
        Assert.Equal("secret", File.ReadAllText(Path.Combine(outside, "secret")));
        Assert.Equal(["secret"], Directory.GetFileSystemEntries(outside).Select(Path.GetFileName));

        // A new name is created; with overwrite an existing symlink is replaced, never written through.
        var (target, n, _) = WorkspaceCopy.ExtractTo(Dir1(), "x", Path.Combine(dest, "fresh"), exclusive: true);
        Assert.Equal((Path.Combine(dest, "fresh"), 2), (target, n));
        Assert.Equal("new", File.ReadAllText(Path.Combine(dest, "fresh", "secret")));
        WorkspaceCopy.ExtractTo(File1(), "x", Path.Combine(dest, "link"), exclusive: false);
        Assert.Null(new FileInfo(Path.Combine(dest, "link")).LinkTarget);
        Assert.Equal("new", File.ReadAllText(Path.Combine(dest, "link")));
        Assert.Equal("secret", File.ReadAllText(Path.Combine(outside, "secret")));
    }

    [Fact]
    public void A_pinned_regular_file_is_archived_with_its_mode_and_content()
    {
        string dir = Directory.CreateDirectory(Path.Combine(_root, "pin")).FullName;
        string file = Path.Combine(dir, "run.sh");
        File.WriteAllText(file, "echo hi\n");
        File.SetUnixFileMode(file, (UnixFileMode)0b111_101_000);
        var access = Microagent.Access.HostAccess.Create([dir], "/", "r");
        using var pinned = access.OpenSource(file);
        var ms = new MemoryStream();
        Assert.Equal((1, 8L), WorkspaceCopy.WriteArchive(pinned, ms));
        ms.Position = 0;
        var (target, _, bytes) = WorkspaceCopy.ExtractArchive(ms, WorkspaceCopy.Staged, Path.Combine(_root, "out.sh"));
        Assert.Equal(8, bytes);
        Assert.Equal("echo hi\n", File.ReadAllText(target));
        Assert.Equal((UnixFileMode)0b111_101_000, File.GetUnixFileMode(target));
    }
}

using Microagent.Access;
using Microagent.Errors;
using Microagent.Workspaces;

namespace Microagent.Tests.Access;

/// <summary>Host roots: what resolves inside is pinned, what escapes (by path, by symlink, by a swap after the check) is not reached.</summary>
public sealed class HostAccessTests : IDisposable
{
    private readonly string _base = Path.Combine("/tmp", $"ma-ha-{Guid.NewGuid():N}"[..16]);
    private readonly string _root, _outside;
    private readonly HostAccess _access;

    public HostAccessTests()
    {
        _root = Directory.CreateDirectory(Path.Combine(_base, "root")).FullName;
        _outside = Directory.CreateDirectory(Path.Combine(_base, "outside")).FullName;
        File.WriteAllText(Path.Combine(_outside, "secret.txt"), "secret");
        _access = HostAccess.Create([_root], "/", "use --host-root");
    }

    public void Dispose() => Directory.Delete(_base, recursive: true);

    private static MicroagentException Denied(Action a)
    {
        var e = Assert.ThrowsAny<MicroagentException>(a);
        Assert.Equal(ErrorKind.PolicyDenied, e.Kind);
        Assert.Equal("use --host-root", e.Remediation);
        return e;
    }

    [Fact]
    public void Roots_are_real_paths_and_must_exist()
    {
        string link = Path.Combine(_base, "root-link");
        File.CreateSymbolicLink(link, _root);
        var access = HostAccess.Create(["root-link", _root], _base, "r");
        Assert.Equal([_root], access.Roots);
        Assert.Equal(ErrorKind.Invalid, Assert.ThrowsAny<MicroagentException>(() => HostAccess.Create([Path.Combine(_base, "none")], "/", "r")).Kind);
        Assert.Equal(ErrorKind.Invalid, Assert.ThrowsAny<MicroagentException>(() => HostAccess.Create([], "/", "r")).Kind);
        Assert.True(access.IsInside(_root) && access.IsInside(_root + "/a/b"));
        Assert.False(access.IsInside(_root + "x") || access.IsInside(_base));
    }

    [Fact]
    public void A_source_inside_is_pinned_and_one_outside_is_denied_naming_the_roots()
    {
        File.WriteAllText(Path.Combine(_root, "in.txt"), "in");
        using (var p = _access.OpenSource(Path.Combine(_root, "in.txt")))
        {
            Assert.Equal(Path.Combine(_root, "in.txt"), p.RealPath);
            Assert.True(p.Stat.IsRegularFile);
            using var r = new StreamReader(p.OpenRead());
            Assert.Equal("in", r.ReadToEnd());
        }
        var e = Denied(() => _access.OpenSource(Path.Combine(_outside, "secret.txt")));
        Assert.Contains(_root, e.Message);
        Assert.Equal("host_path", e.Field);
        Denied(() => _access.OpenSource(Path.Combine(_root, "..", "outside", "secret.txt")));
        Denied(() => _access.OpenSource(Path.Combine(_outside, "missing"))); // missing outside: denied, not "not found"
        Assert.Equal(ErrorKind.NotFound, Assert.ThrowsAny<MicroagentException>(() => _access.OpenSource(Path.Combine(_root, "missing"))).Kind);
    }

    [Fact]
    public void Relative_paths_are_resolved_against_the_working_directory()
    {
        File.WriteAllText(Path.Combine(_root, "rel.txt"), "r");
        var access = HostAccess.Create(["."], _root, "use --host-root");
        using (var p = access.OpenSource("rel.txt")) Assert.Equal(Path.Combine(_root, "rel.txt"), p.RealPath);
        using (var d = access.OpenDestination("new.txt", "x", overwrite: false)) Assert.Equal(Path.Combine(_root, "new.txt"), d.RealPath);
        Assert.Equal(ErrorKind.PolicyDenied, Assert.ThrowsAny<MicroagentException>(() => access.OpenSource("../outside/secret.txt")).Kind);
    }

    [Fact]
    public void A_symlink_inside_the_root_is_followed_and_must_lead_inside()
    {
        File.CreateSymbolicLink(Path.Combine(_root, "out-file"), Path.Combine(_outside, "secret.txt"));
        File.CreateSymbolicLink(Path.Combine(_root, "out-dir"), _outside);
        Denied(() => _access.OpenSource(Path.Combine(_root, "out-file")));
        Denied(() => _access.OpenSource(Path.Combine(_root, "out-dir")));
        Denied(() => _access.OpenSource(Path.Combine(_root, "out-dir", "secret.txt")));
        Directory.CreateDirectory(Path.Combine(_root, "real"));
        File.CreateSymbolicLink(Path.Combine(_root, "in-dir"), "real");
        using var p = _access.OpenSource(Path.Combine(_root, "in-dir"));
        Assert.Equal(Path.Combine(_root, "real"), p.RealPath);
        Assert.True(p.Stat.IsDirectory);
    }

    [Fact]
    public void Proc_magic_links_are_refused_even_when_they_lead_inside()
    {
        File.WriteAllText(Path.Combine(_root, "in.txt"), "in");
        Denied(() => _access.OpenSource($"/proc/self/root{_outside}/secret.txt"));
        Denied(() => _access.OpenSource($"/proc/self/root{_root}/in.txt"));
        File.CreateSymbolicLink(Path.Combine(_root, "magic"), $"/proc/self/root{_root}");
        Assert.Contains("magic link", Denied(() => _access.OpenSource(Path.Combine(_root, "magic", "in.txt"))).Message);
        Denied(() => _access.OpenDestination(Path.Combine(_root, "magic"), "x", overwrite: true));
        Denied(() => _access.OpenDestination(Path.Combine(_root, "magic", "new.txt"), "x", overwrite: true));
    }

    [Fact]
    public void A_symlink_swapped_in_after_the_check_does_not_redirect_the_read()
    {
        string file = Path.Combine(_root, "data.txt");
        File.WriteAllText(file, "original");
        using var pinned = _access.OpenSource(file);
        File.Move(file, Path.Combine(_root, "moved.txt"));
        File.CreateSymbolicLink(file, Path.Combine(_outside, "secret.txt"));
        using var r = new StreamReader(pinned.OpenRead());
        Assert.Equal("original", r.ReadToEnd());

        // A directory: the archive is read below the pinned descriptor, not below the (now swapped) name.
        string dir = Directory.CreateDirectory(Path.Combine(_root, "tree")).FullName;
        File.WriteAllText(Path.Combine(dir, "a"), "aa");
        using var tree = _access.OpenSource(dir);
        Directory.Move(dir, Path.Combine(_root, "tree-moved"));
        File.CreateSymbolicLink(dir, _outside);
        using var ms = new MemoryStream();
        var (entries, bytes) = WorkspaceCopy.WriteArchive(tree, ms);
        Assert.Equal((2, 2L), (entries, bytes));
    }

    [Fact]
    public void A_destination_directory_receives_the_name_and_an_outside_one_is_denied()
    {
        using (var d = _access.OpenDestination(_root, "out.txt", overwrite: false))
        {
            Assert.Equal(Path.Combine(_root, "out.txt"), d.RealPath);
            Assert.False(d.Exists);
        }
        using (var d = _access.OpenDestination(Path.Combine(_root, "new.txt"), "ignored", overwrite: false))
            Assert.Equal(Path.Combine(_root, "new.txt"), d.RealPath);
        Denied(() => _access.OpenDestination(_outside, "x", overwrite: true));
        Denied(() => _access.OpenDestination(Path.Combine(_outside, "x.txt"), "x", overwrite: true));
        Denied(() => _access.OpenDestination(Path.Combine(_base, "nowhere", "x.txt"), "x", overwrite: true));
        Assert.Equal(ErrorKind.NotFound,
            Assert.ThrowsAny<MicroagentException>(() => _access.OpenDestination(Path.Combine(_root, "nowhere", "x.txt"), "x", overwrite: true)).Kind);
    }

    [Fact]
    public void A_destination_symlink_leading_outside_is_denied_even_with_overwrite()
    {
        File.CreateSymbolicLink(Path.Combine(_root, "to-secret"), Path.Combine(_outside, "secret.txt"));
        File.CreateSymbolicLink(Path.Combine(_root, "to-outside"), _outside);
        Denied(() => _access.OpenDestination(Path.Combine(_root, "to-secret"), "x", overwrite: true));
        Denied(() => _access.OpenDestination(Path.Combine(_root, "to-outside"), "x", overwrite: true));
        Denied(() => _access.OpenDestination(Path.Combine(_root, "to-outside", "x.txt"), "x", overwrite: true));
        Assert.Equal("secret", File.ReadAllText(Path.Combine(_outside, "secret.txt")));
    }

    [Fact]
    public void An_existing_destination_needs_overwrite()
    {
        File.WriteAllText(Path.Combine(_root, "there.txt"), "old");
        var e = Assert.ThrowsAny<MicroagentException>(() => _access.OpenDestination(Path.Combine(_root, "there.txt"), "x", overwrite: false));
        Assert.Equal(ErrorKind.Conflict, e.Kind);
        Assert.Contains("overwrite: true", e.Remediation);
        using var d = _access.OpenDestination(Path.Combine(_root, "there.txt"), "x", overwrite: true);
        Assert.True(d.Exists);
    }

    [Fact]
    public void A_swap_of_the_destination_directory_after_the_check_does_not_redirect_the_write()
    {
        string dir = Directory.CreateDirectory(Path.Combine(_root, "d")).FullName;
        using var dest = _access.OpenDestination(Path.Combine(dir, "out.txt"), "x", overwrite: false);
        Directory.Move(dir, Path.Combine(_root, "d-moved"));
        File.CreateSymbolicLink(dir, _outside);
        File.WriteAllText(dest.ProcPath, "written");
        Assert.Equal("written", File.ReadAllText(Path.Combine(_root, "d-moved", "out.txt")));
        Assert.False(File.Exists(Path.Combine(_outside, "out.txt")));
    }

    [Fact]
    public void Image_sources_that_read_host_paths_are_checked()
    {
        Directory.CreateDirectory(Path.Combine(_root, "layout"));
        Assert.Null(HostAccess.ImageSourcePath("busybox"));
        Assert.Null(HostAccess.ImageSourcePath(null));
        Assert.Equal(Path.Combine(_root, "layout"), _access.CheckImageSource($"oci:{_root}/layout:v1"));
        Assert.Equal(Path.Combine(_root, "layout"), _access.CheckImageSource($"oci:{_root}/layout"));
        Assert.Equal("image", Denied(() => _access.CheckImageSource($"oci:{_outside}")).Field);
        Denied(() => _access.CheckImageSource($"docker-archive:{_outside}/secret.txt"));
        Assert.Null(_access.CheckImageSource("127.0.0.1:5000/tools/python:3.11"));
    }
}

using Microagent.Errors;
using Microagent.Volumes;

namespace Microagent.Tests.Volumes;

public sealed class DiskRequestTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("ma-diskreq-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    [Theory]
    [InlineData("data:/data", DiskKinds.Volume, "data", false)]
    [InlineData("data:/data:ro", DiskKinds.Volume, "data", true)]
    [InlineData("./x/disk.ext4:/mnt/disk", DiskKinds.Image, "disk", false)]
    [InlineData("/abs/img.raw:/mnt:ro", DiskKinds.Image, "img", true)]
    [InlineData("src.tar.gz:/src", DiskKinds.Bundle, "src", true)]
    [InlineData("../b.tgz:/b:rw", DiskKinds.Bundle, "b", false)]
    [InlineData("./w.tar:/w", DiskKinds.Bundle, "w", true)]
    public void Volume_form_picks_the_kind_name_and_mode(string text, string kind, string name, bool readOnly)
    {
        var d = DiskRequest.ParseVolume(text);
        Assert.Equal(kind, d.Kind);
        Assert.Equal(name, d.Name);
        Assert.Equal(readOnly, d.ReadOnly);
        Assert.Equal(text.Split(':')[0], d.Source);
    }

    [Theory]
    [InlineData("data", "no guest mount point")]              // missing DST
    [InlineData("data:", "no guest mount point")]
    [InlineData("data:relative/dir", "is not absolute")]
    [InlineData("data:/data:rx", "unknown mode 'rx'")]
    [InlineData("data:/", "cannot be mounted on /")]
    [InlineData("data:/a/../b", "plain absolute path")]
    [InlineData("data:/proc/x", "under /proc")]
    [InlineData("data:/a//b", "not in its plain form")]
    [InlineData(":/data", "is not SRC:DST")]
    [InlineData("a:b:c:d", "is not SRC:DST")]
    [InlineData("bad name:/data", "is invalid")]
    public void Bad_specs_are_invalid_with_the_reason(string text, string reason)
    {
        var e = Assert.ThrowsAny<MicroagentException>(() => DiskRequest.ParseVolume(text));
        Assert.Equal(ErrorKind.Invalid, e.Kind);
        Assert.Equal("volume", e.Field);
        Assert.Contains(reason, e.Message);
    }

    [Fact]
    public void A_host_directory_is_refused_saying_why_and_what_instead()
    {
        var e = Assert.ThrowsAny<MicroagentException>(() => DiskRequest.ParseVolume($"{_dir}:/data"));
        Assert.Equal(ErrorKind.Invalid, e.Kind);
        Assert.Contains("host directories are not shared", e.Message);
        Assert.Contains("tar -czf", e.Remediation);
        Assert.Contains("volume create", e.Remediation);
        Assert.Throws<Microagent.Workspaces.WorkspaceSpecException>(() => DiskRequest.ParseNamed(DiskKinds.Image, $"d={_dir}:/data"));
    }

    [Fact]
    public void Long_forms_carry_their_name()
    {
        var disk = DiskRequest.ParseNamed(DiskKinds.Image, "scratch=./s.img:/scratch:rw");
        Assert.Equal(("scratch", DiskKinds.Image, "./s.img", "/scratch", false), (disk.Name, disk.Kind, disk.Source, disk.Target, disk.ReadOnly));
        var bundle = DiskRequest.ParseNamed(DiskKinds.Bundle, "src=./src.tar.gz:/src");
        Assert.True(bundle.ReadOnly);
        Assert.Contains("is not NAME=PATH:MOUNT", Assert.ThrowsAny<MicroagentException>(() => DiskRequest.ParseNamed(DiskKinds.Image, "./s.img:/s")).Message);
        Assert.Contains("a bundle is a .tar", Assert.ThrowsAny<MicroagentException>(() => DiskRequest.ParseNamed(DiskKinds.Bundle, "b=./x.ext4:/b")).Message);
    }

    [Fact]
    public void A_list_needs_unique_names_and_separate_targets()
    {
        DiskRequest.CheckList([DiskRequest.ParseVolume("a:/a"), DiskRequest.ParseVolume("b:/b")]);
        Assert.Contains("overlap", Assert.ThrowsAny<MicroagentException>(() => DiskRequest.CheckList([DiskRequest.ParseVolume("a:/a"), DiskRequest.ParseVolume("b:/a/b")])).Message);
        Assert.Contains("named 'a'", Assert.ThrowsAny<MicroagentException>(() => DiskRequest.CheckList([DiskRequest.ParseVolume("a:/a"), DiskRequest.ParseVolume("a:/b")])).Message);
    }
}

public sealed class SpecFileVolumesTests
{
    [Fact]
    public void A_spec_file_lists_volumes_in_the_v_syntax()
    {
        var spec = Microagent.Workspaces.WorkspaceSpecFile.Parse("name: lab\nvolumes: [\"data:/data\", \"./src.tar.gz:/src:rw\"]\n");
        Assert.Equal([DiskKinds.Volume, DiskKinds.Bundle], spec.Disks.Select(d => d.Kind));
        Assert.False(spec.Disks[1].ReadOnly);
        Assert.Throws<Microagent.Workspaces.WorkspaceSpecException>(() => Microagent.Workspaces.WorkspaceSpecFile.Parse("volumes: [\"data\"]\n"));
    }
}

public sealed class MissingHostPathTests
{
    [Fact]
    public void A_missing_path_not_named_like_a_disk_is_refused_as_a_host_directory()
    {
        var e = Assert.Throws<Microagent.Workspaces.WorkspaceSpecException>(() => DiskRequest.ParseVolume("./no-such-src:/src:ro"));
        Assert.Contains("host directories are not shared", e.Message);
        Assert.Contains("microagent cp", e.Remediation);
        Assert.Equal(DiskKinds.Image, DiskRequest.ParseVolume("./no-such.ext4:/d").Kind); // named like a disk: not found later, at create
    }
}

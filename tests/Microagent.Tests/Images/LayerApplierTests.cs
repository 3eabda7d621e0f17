using Microagent.Errors;
using Microagent.Images;

namespace Microagent.Tests.Images;

public sealed class LayerApplierTests : IDisposable
{
    private readonly TempDir _tmp = new();
    private readonly string _root;
    private readonly string _outside;

    public LayerApplierTests()
    {
        _root = _tmp.Sub("root");
        _outside = _tmp.Sub("outside");
        File.WriteAllText(Path.Combine(_outside, "secret"), "keep");
    }

    public void Dispose() => _tmp.Dispose();

    private LayerApplier Apply(LayerApplier? applier, params byte[][] tars)
    {
        applier ??= new LayerApplier(_root);
        foreach (byte[] t in tars) applier.Apply(new MemoryStream(t));
        return applier;
    }

    private static string Name(string p) => Path.GetFileName(p);

    private void AssertOutsideUntouched()
    {
        Assert.Equal(new[] { "secret" }, Directory.GetFileSystemEntries(_outside).Select(Name).ToArray());
        Assert.Equal("keep", File.ReadAllText(Path.Combine(_outside, "secret")));
        Assert.Equal(new[] { "root" }, Directory.GetFileSystemEntries(_tmp.Path).Select(Name).Where(n => n != "outside").ToArray());
    }

    [Fact]
    public void AppliesFilesDirsSymlinksHardlinksModesAndOwners()
    {
        Apply(null, TestImages.Tar(w =>
        {
            w.Dir("./usr/", 0b111_101_101);
            w.Dir("usr/bin");
            w.File("usr/bin/tool", "#!/bin/sh\n", 0b100_111_101_101, uid: 0, gid: 0); // setuid 04755
            w.Dir("tmp", 0b1_111_111_111);                                              // sticky 01777
            w.File("home/u/file", "data", 0b110_100_000, uid: 1000, gid: 1001);         // implicit parents
            w.Symlink("bin", "usr/bin");
            w.Symlink("abs", "/etc/passwd");
            w.HardLink("usr/bin/tool2", "usr/bin/tool");
        }));

        Assert.Equal("0:0:4755", TestImages.Stat(Path.Combine(_root, "usr/bin/tool")));
        Assert.Equal("0:0:1777", TestImages.Stat(Path.Combine(_root, "tmp")));
        Assert.Equal("1000:1001:640", TestImages.Stat(Path.Combine(_root, "home/u/file")));
        Assert.Equal("usr/bin", new FileInfo(Path.Combine(_root, "bin")).LinkTarget);
        Assert.Equal("/etc/passwd", new FileInfo(Path.Combine(_root, "abs")).LinkTarget);
        Assert.Equal("2", TestImages.Run("stat", "-c", "%h", Path.Combine(_root, "usr/bin/tool2")).Trim());
        Assert.Equal(new DateTime(2020, 1, 2, 3, 4, 5, DateTimeKind.Utc), File.GetLastWriteTimeUtc(Path.Combine(_root, "home/u/file")));
    }

    [Fact]
    public void WhiteoutsRemoveLowerEntriesAndOpaqueDirsKeepOnlyUpper()
    {
        Apply(null,
            TestImages.Tar(w =>
            {
                w.File("a/keep", "1");
                w.File("a/gone", "2");
                w.Dir("a/subdir");
                w.File("a/subdir/x", "3");
                w.Symlink("a/subdir/out", _outside); // recursive removal must not descend into it
                w.File("o/lower1", "4");
                w.File("o/lower2", "5");
                w.Symlink("o/link", _outside); // removing it must not touch the target
            }),
            TestImages.Tar(w =>
            {
                w.File(".wh.nonexistent", "");
                w.File("a/.wh.gone", "");
                w.File("a/.wh.subdir", "");
                w.File("o/upper", "6");
                w.File("o/.wh..wh..opq", "");
            }));

        Assert.Equal(new[] { "keep" }, Directory.GetFileSystemEntries(Path.Combine(_root, "a")).Select(Name).ToArray());
        Assert.Equal(new[] { "upper" }, Directory.GetFileSystemEntries(Path.Combine(_root, "o")).Select(Name).ToArray());
        AssertOutsideUntouched();
    }

    [Fact]
    public void LaterLayersReplaceFilesWithDirsAndBack()
    {
        Apply(null,
            TestImages.Tar(w => { w.File("p", "file"); w.Dir("q"); w.File("q/inner", "x"); }),
            TestImages.Tar(w => { w.Dir("p"); w.File("p/child", "now a dir"); }),
            TestImages.Tar(w => { w.File("q", "now a file"); }));
        Assert.Equal("now a dir", File.ReadAllText(Path.Combine(_root, "p/child")));
        Assert.Equal("now a file", File.ReadAllText(Path.Combine(_root, "q")));
    }

    public static TheoryData<string> HostileLayers => new()
    {
        "dotdot", "absolute", "hardlink-dotdot", "hardlink-through-symlink", "hardlink-missing", "duplicate-file",
        "symlink-loop", "parent-is-file",
    };

    [Theory]
    [MemberData(nameof(HostileLayers))]
    public void HostileEntriesAreRefusedAndNothingEscapes(string kind)
    {
        string marker = $"microagent-test-{Guid.NewGuid():N}";
        byte[][] tars = kind switch
        {
            "dotdot" => [TestImages.Tar(w => w.File("../outside/pwned", "x"))],
            "absolute" => [TestImages.Tar(w => w.File($"/tmp/{marker}", "x"))],
            "hardlink-dotdot" => [TestImages.Tar(w => w.HardLink("h", "../outside/secret"))],
            "hardlink-through-symlink" => [TestImages.Tar(w => { w.Symlink("s", _outside); w.HardLink("h", "s/secret"); })],
            "hardlink-missing" => [TestImages.Tar(w => w.HardLink("h", "nope"))],
            "duplicate-file" => [TestImages.Tar(w => { w.File("a", "1"); w.File("a", "2"); })],
            "symlink-loop" => [TestImages.Tar(w => { w.Symlink("l1", "l2"); w.Symlink("l2", "l1"); w.File("l1/x", "x"); })],
            "parent-is-file" => [TestImages.Tar(w => { w.File("f", "x"); w.File("f/x", "x"); })],
            _ => throw new ArgumentOutOfRangeException(nameof(kind)),
        };
        var e = Assert.Throws<MicroagentException>(() => Apply(null, tars));
        Assert.Equal(ErrorKind.Invalid, e.Kind);
        Assert.Contains("refused", e.Message);
        AssertOutsideUntouched();
        Assert.False(File.Exists($"/tmp/{marker}"));
    }

    public static TheoryData<string> ContainedLayers => new()
    {
        "symlink-then-write", "relative-symlink-then-write", "whiteout-through-symlink", "symlink-across-layers", "dotdot-symlink-chain",
    };

    /// <summary>Writes through symlinks resolve as they would in the guest, clamped to the root: they land inside it.</summary>
    [Theory]
    [MemberData(nameof(ContainedLayers))]
    public void WritesThroughEscapingSymlinksStayInsideTheRoot(string kind)
    {
        byte[][] tars = kind switch
        {
            "symlink-then-write" => [TestImages.Tar(w => { w.Symlink("evil", _outside); w.File("evil/pwned", "x"); })],
            "relative-symlink-then-write" => [TestImages.Tar(w => { w.Symlink("evil", "../outside"); w.File("evil/pwned", "x"); })],
            "whiteout-through-symlink" => [TestImages.Tar(w => { w.Symlink("s", _outside); w.File("s/.wh.secret", ""); })],
            "symlink-across-layers" => [TestImages.Tar(w => w.Symlink("d", _outside)), TestImages.Tar(w => w.File("d/pwned", "x"))],
            "dotdot-symlink-chain" => [TestImages.Tar(w => { w.Dir("a"); w.Symlink("a/up", "../../../.."); w.File("a/up/outside/pwned", "x"); })],
            _ => throw new ArgumentOutOfRangeException(nameof(kind)),
        };
        Apply(null, tars);
        AssertOutsideUntouched();
        var inside = Directory.GetFiles(_root, "pwned", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = FileAttributes.ReparsePoint });
        Assert.True(kind == "whiteout-through-symlink" || inside.Length == 1, $"expected the write inside the root, found {inside.Length}");
    }

    public static TheoryData<string> DeferredDirMetadataLayers => new()
    {
        "parent-replaced-by-symlink", "grandparent-replaced-by-symlink", "whiteout-then-symlink", "opaque-then-symlink",
    };

    /// <summary>
    /// Directory modes and times are applied at the end of a layer; a directory whose parent a later entry of the
    /// same layer replaces with a symlink to the host must not have its metadata applied through that symlink.
    /// </summary>
    [Theory]
    [MemberData(nameof(DeferredDirMetadataLayers))]
    public void DeferredDirectoryModesAndTimesNeverFollowAReplacedParent(string kind)
    {
        string sentinel = Path.Combine(_outside, "secret");
        File.SetUnixFileMode(sentinel, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        var sentinelTime = new DateTime(2001, 2, 3, 4, 5, 6, DateTimeKind.Utc);
        File.SetLastWriteTimeUtc(sentinel, sentinelTime);
        File.SetLastAccessTimeUtc(sentinel, sentinelTime);

        void HostileDir(System.Formats.Tar.TarWriter w, string name)
            => w.WriteEntry(new System.Formats.Tar.PaxTarEntry(System.Formats.Tar.TarEntryType.Directory, name)
            {
                Mode = (UnixFileMode)0b110_110_110, // 0666: would make the host file world-writable
                ModificationTime = new DateTimeOffset(2011, 1, 1, 0, 0, 0, TimeSpan.Zero),
            });

        byte[][] tars = kind switch
        {
            "parent-replaced-by-symlink" => [TestImages.Tar(w => { HostileDir(w, "p/secret/"); w.Symlink("p", _outside); })],
            "grandparent-replaced-by-symlink" =>
                [TestImages.Tar(w => { HostileDir(w, "g/outside/secret/"); w.Symlink("g", _tmp.Path); })],
            "whiteout-then-symlink" => [TestImages.Tar(w => { HostileDir(w, "p/secret/"); w.File(".wh.p", ""); w.Symlink("p", _outside); })],
            "opaque-then-symlink" => [TestImages.Tar(w => { HostileDir(w, "p/secret/"); w.File(".wh..wh..opq", ""); w.Symlink("p", _outside); })],
            _ => throw new ArgumentOutOfRangeException(nameof(kind)),
        };
        try { Apply(null, tars); }
        catch (MicroagentException) { } // refusing the layer is fine too; what matters is the host file

        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(sentinel));
        Assert.Equal(sentinelTime, File.GetLastWriteTimeUtc(sentinel));
        Assert.Equal(sentinelTime, File.GetLastAccessTimeUtc(sentinel));
        AssertOutsideUntouched();
    }

    [Fact]
    public void MergedUsrSymlinkParentsAreFollowedWithinTheRoot()
    {
        Apply(null,
            TestImages.Tar(w => { w.Dir("usr"); w.Dir("usr/lib"); w.Symlink("lib", "usr/lib"); w.Symlink("lib64", "/usr/lib"); }),
            TestImages.Tar(w => { w.File("lib/x86_64-linux-gnu/libc.so.6", "libc"); w.File("lib64/ld.so", "ld"); }));
        Assert.Equal("libc", File.ReadAllText(Path.Combine(_root, "usr/lib/x86_64-linux-gnu/libc.so.6")));
        Assert.Equal("ld", File.ReadAllText(Path.Combine(_root, "usr/lib/ld.so")));
        Assert.Equal("usr/lib", new FileInfo(Path.Combine(_root, "lib")).LinkTarget);
    }

    private const string Placeholder = "@@capability-bytes@@"; // 20 ASCII bytes, patched to the binary value

    [Fact]
    public void DevicesFifosAndXattrsIncludingBinaryCapabilitiesAreApplied()
    {
        // security.capability v2 for cap_setuid,cap_net_raw+ep: bytes >= 0x80 must survive the PAX header exactly.
        byte[] cap = [0x01, 0x00, 0x00, 0x02, 0x80, 0x20, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        byte[] tar = TestImages.Tar(w =>
        {
            w.File("before/data", new string('d', 1000)); // the raw header of a later entry is found after skipped data
            var f = new System.Formats.Tar.PaxTarEntry(System.Formats.Tar.TarEntryType.RegularFile, "bin/ping",
                new Dictionary<string, string> { ["SCHILY.xattr.user.note"] = "hello", ["SCHILY.xattr.security.capability"] = Placeholder })
            { Mode = (UnixFileMode)0b111_101_101, DataStream = new MemoryStream("x"u8.ToArray()) };
            w.WriteEntry(f);
            w.WriteEntry(new System.Formats.Tar.PaxTarEntry(System.Formats.Tar.TarEntryType.CharacterDevice, "dev/null2") { DeviceMajor = 1, DeviceMinor = 3, Mode = (UnixFileMode)0b110_110_110 });
            w.WriteEntry(new System.Formats.Tar.PaxTarEntry(System.Formats.Tar.TarEntryType.Fifo, "run/fifo") { Mode = (UnixFileMode)0b110_100_100 });
        });
        tar = TestImages.Patch(tar, System.Text.Encoding.ASCII.GetBytes(Placeholder), cap);
        Apply(null, tar);
        string ping = Path.Combine(_root, "bin/ping");
        Assert.Equal("hello", TestImages.Run("getfattr", "--only-values", "-n", "user.note", ping));
        if (Environment.IsPrivilegedProcess)
        {
            Assert.Contains(Convert.ToHexStringLower(cap), TestImages.Run("getfattr", "-e", "hex", "-n", "security.capability", ping));
            Assert.Contains("cap_setuid,cap_net_raw=ep", TestImages.Run("getcap", ping));
            Assert.Equal("c 1 3", TestImages.Run("stat", "-c", "%F %t %T", Path.Combine(_root, "dev/null2")).Replace("character special file", "c").Trim());
            Assert.Equal("fifo", TestImages.Run("stat", "-c", "%F", Path.Combine(_root, "run/fifo")).Trim());
        }
    }

    [Fact]
    public void ZstdLayersAreDecompressedWithTheSystemLibzstd()
    {
        byte[] tar = TestImages.Tar(w => w.File("etc/z", new string('z', 100_000)));
        byte[] zst = TestImages.Zstd(tar);
        using var s = LayerApplier.OpenDecompressed(new MemoryStream(zst), OciMediaTypes.LayerTarZstd);
        new LayerApplier(_root).Apply(s);
        Assert.Equal(100_000, new FileInfo(Path.Combine(_root, "etc/z")).Length);
        using var bad = LayerApplier.OpenDecompressed(new MemoryStream(zst[..(zst.Length / 2)]), OciMediaTypes.LayerTarZstd);
        Assert.ThrowsAny<Exception>(() => new LayerApplier(_tmp.Sub("root2")).Apply(bad));
    }

    [Fact]
    public void OversizeContentIsRefused()
    {
        var applier = new LayerApplier(_root, new LayerLimits(MaxTotalBytes: 1000));
        var e = Assert.Throws<MicroagentException>(() => Apply(applier,
            TestImages.Tar(w => w.File("small", new string('a', 600))),
            TestImages.Tar(w => w.File("big", new string('b', 600)))));
        Assert.Equal(ErrorKind.Invalid, e.Kind);
        Assert.Contains("decompression bomb", e.Message);
        Assert.False(File.Exists(Path.Combine(_root, "big")));
    }

    [Fact]
    public void TooManyEntriesAreRefused()
    {
        var applier = new LayerApplier(_root, new LayerLimits(MaxEntries: 3));
        var e = Assert.Throws<MicroagentException>(() => Apply(applier, TestImages.Tar(w =>
        {
            for (int i = 0; i < 5; i++) w.File($"f{i}", "x");
        })));
        Assert.Equal(ErrorKind.Invalid, e.Kind);
    }

    [Fact]
    public void GarbageIsAnInvalidTar()
    {
        var e = Assert.Throws<MicroagentException>(() => new LayerApplier(_root).Apply(new MemoryStream(new byte[1024].Select(_ => (byte)'z').ToArray())));
        Assert.Equal(ErrorKind.Invalid, e.Kind);
    }
}

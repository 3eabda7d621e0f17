using System.Text;
using Microagent.Kernels;
using Microagent.Tests.Images;

namespace Microagent.Tests.Kernels;

public sealed class CpioWriterTests
{
    private static byte[] Build()
    {
        var ms = new MemoryStream();
        using (var w = new CpioWriter(ms, leaveOpen: true))
        {
            w.AddDirectory("/dev");
            w.AddFile("/init", Encoding.ASCII.GetBytes("#!agent"), 0b111_101_101);
            w.AddFile("/lib/modules/6.1/kernel/a.ko", [1, 2, 3, 4, 5], 0b110_100_100);
            w.AddSymlink("/bin/sh", "/init");
            w.AddFile("etc/empty", []);
            w.Finish();
        }
        return ms.ToArray();
    }

    [Fact]
    public void RoundTripsWithParentsFirstAndAlignment()
    {
        var entries = CpioReader.Read(Build());
        Assert.Equal(["dev", "init", "lib", "lib/modules", "lib/modules/6.1", "lib/modules/6.1/kernel", "lib/modules/6.1/kernel/a.ko", "bin", "bin/sh", "etc", "etc/empty"],
            entries.Select(e => e.Name).ToArray());
        var init = entries.Single(e => e.Name == "init");
        Assert.Equal(0x81EDu, init.Mode); // S_IFREG | 0755
        Assert.Equal("#!agent", Encoding.ASCII.GetString(init.Data));
        Assert.Equal(0x41EDu, entries[0].Mode); // S_IFDIR | 0755
        Assert.Equal(0xA1FFu, entries.Single(e => e.Name == "bin/sh").Mode);
        Assert.Equal("/init", Encoding.ASCII.GetString(entries.Single(e => e.Name == "bin/sh").Data));
        Assert.Equal([1, 2, 3, 4, 5], entries.Single(e => e.Name.EndsWith("a.ko", StringComparison.Ordinal)).Data);
        Assert.All(entries, e => { Assert.Equal(0u, e.Uid); Assert.Equal(0u, e.Gid); Assert.Equal(0u, e.Mtime); });
        Assert.Equal(entries.Count, entries.Select(e => e.Ino).Distinct().Count());
    }

    [Fact]
    public void IsDeterministicAndReadableByGnuCpio()
    {
        byte[] a = Build();
        Assert.Equal(a, Build());
        string file = Path.GetTempFileName();
        try
        {
            File.WriteAllBytes(file, a);
            string listing = TestImages.Run("sh", "-c", $"cpio -it --quiet < '{file}'");
            Assert.Equal("dev\ninit\nlib\nlib/modules\nlib/modules/6.1\nlib/modules/6.1/kernel\nlib/modules/6.1/kernel/a.ko\nbin\nbin/sh\netc\netc/empty\n", listing);
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public void RejectsBadPathsAndDuplicates()
    {
        using var w = new CpioWriter(new MemoryStream());
        Assert.Throws<Microagent.Errors.MicroagentException>(() => w.AddFile("../x", []));
        w.AddFile("x", []);
        Assert.Throws<Microagent.Errors.MicroagentException>(() => w.AddFile("/x", []));
    }
}

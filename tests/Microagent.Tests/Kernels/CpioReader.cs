using System.Globalization;
using System.Text;

namespace Microagent.Tests.Kernels;

/// <summary>Minimal newc reader for round-trip tests (independent of the writer).</summary>
internal static class CpioReader
{
    public sealed record Entry(string Name, uint Ino, uint Mode, uint Uid, uint Gid, uint Nlink, uint Mtime, byte[] Data);

    public static List<Entry> Read(byte[] archive)
    {
        var list = new List<Entry>();
        int pos = 0;
        while (true)
        {
            Assert.Equal(0, pos % 4);
            string magic = Encoding.ASCII.GetString(archive, pos, 6);
            Assert.Equal("070701", magic);
            uint F(int i) => uint.Parse(Encoding.ASCII.GetString(archive, pos + 6 + i * 8, 8), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            uint ino = F(0), mode = F(1), uid = F(2), gid = F(3), nlink = F(4), mtime = F(5), size = F(6), namesize = F(11), check = F(12);
            Assert.Equal(0u, check);
            string name = Encoding.UTF8.GetString(archive, pos + 110, (int)namesize - 1);
            Assert.Equal(0, archive[pos + 110 + namesize - 1]);
            pos = Align(pos + 110 + (int)namesize);
            byte[] data = archive.AsSpan(pos, (int)size).ToArray();
            pos = Align(pos + (int)size);
            if (name == "TRAILER!!!")
            {
                Assert.Equal(archive.Length, pos);
                return list;
            }
            list.Add(new Entry(name, ino, mode, uid, gid, nlink, mtime, data));
        }
    }

    private static int Align(int p) => (p + 3) & ~3;
}

using System.Buffers.Binary;

namespace Microagent.Volumes;

/// <summary>
/// Recognises a raw ext2/3/4 filesystem image by its superblock (Linux <c>fs/ext4/ext4.h</c> struct ext4_super_block: it
/// starts at byte 1024, <c>s_magic</c> 0xEF53 is the little-endian u16 at offset 0x38 in it) and a qcow2 image by its magic
/// (QEMU <c>docs/interop/qcow2.txt</c>: "QFI\xfb").
/// </summary>
internal static class Ext4Probe
{
    private const int SuperblockOffset = 1024;
    private const int MagicOffset = 0x38;
    private const ushort Ext4Magic = 0xEF53;

    /// <summary>What the file at <paramref name="path"/> is: ext4, qcow2, or null (something else or unreadable).</summary>
    public static string? Identify(string path)
    {
        try
        {
            using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            Span<byte> head = stackalloc byte[SuperblockOffset + MagicOffset + 2];
            int n = fs.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
            if (n >= 4 && head[0] == 'Q' && head[1] == 'F' && head[2] == 'I' && head[3] == 0xfb) return "qcow2";
            if (n < head.Length) return null;
            return BinaryPrimitives.ReadUInt16LittleEndian(head[(SuperblockOffset + MagicOffset)..]) == Ext4Magic ? "ext4" : null;
        }
        catch (IOException) { return null; }
        catch (UnauthorizedAccessException) { return null; }
    }
}

using System.Buffers.Binary;
using System.Text;
using Microagent.Errors;
using Microagent.Tools;

namespace Microagent.Images;

/// <summary>Per-workspace copy-on-write disks: a qcow2 overlay whose backing file is a sealed raw baseline.</summary>
internal static class DiskOverlay
{
    /// <summary>
    /// Creates <paramref name="overlayPath"/> (mode 0600) as a qcow2 overlay on
    /// <paramref name="baselinePath"/> (raw, or <paramref name="backingFormat"/>: a frozen qcow2 snapshot layer). No data is
    /// copied; the backing file must never change afterwards.
    /// </summary>
    public static async Task CreateAsync(string baselinePath, string overlayPath, CancellationToken ct = default, string backingFormat = "raw")
    {
        string backing = Path.GetFullPath(baselinePath);
        if (!File.Exists(backing))
            throw MicroagentException.NotFound($"baseline disk {backing} does not exist", "rebuild it: the image is prepared again on next use");
        string overlay = Path.GetFullPath(overlayPath);
        string dir = Path.GetDirectoryName(overlay)!;
        StatePaths.EnsureDirectory(dir);
        string tmp = Path.Combine(dir, $".{Path.GetFileName(overlay)}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        try
        {
            await ExternalTool.RunAsync("qemu-img", "qemu-utils",
                ["create", "-q", "-f", "qcow2", "-F", backingFormat, "-b", backing, tmp], ct).ConfigureAwait(false);
            File.SetUnixFileMode(tmp, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            File.Move(tmp, overlay, overwrite: true);
        }
        finally
        {
            if (File.Exists(tmp)) File.Delete(tmp);
        }
    }

    /// <summary>
    /// The backing file named in a qcow2 header (QEMU <c>docs/interop/qcow2.txt</c>: magic "QFI\xfb",
    /// backing_file_offset u64 BE at byte 8, backing_file_size u32 BE at 16), made absolute against
    /// the overlay's directory; null for a qcow2 without backing file or a file that is not qcow2.
    /// </summary>
    public static string? BackingFile(string qcow2Path)
    {
        try
        {
            using var fs = new FileStream(qcow2Path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            Span<byte> header = stackalloc byte[20];
            if (fs.Read(header) < 20 || !header[..4].SequenceEqual(Magic)) return null;
            ulong offset = BinaryPrimitives.ReadUInt64BigEndian(header[8..]);
            uint size = BinaryPrimitives.ReadUInt32BigEndian(header[16..]);
            if (offset == 0 || size == 0 || size > 4096) return null;
            fs.Position = (long)offset;
            byte[] name = new byte[size];
            fs.ReadExactly(name);
            string backing = Encoding.UTF8.GetString(name);
            return Path.GetFullPath(backing, Path.GetDirectoryName(Path.GetFullPath(qcow2Path))!);
        }
        catch (IOException) { return null; }
        catch (UnauthorizedAccessException) { return null; }
    }

    private static ReadOnlySpan<byte> Magic => [(byte)'Q', (byte)'F', (byte)'I', 0xfb];

    /// <summary>Every file in the backing chain of <paramref name="qcow2Path"/> (snapshots stack overlays on overlays).</summary>
    public static IEnumerable<string> BackingChain(string qcow2Path)
    {
        string cur = qcow2Path;
        for (int depth = 0; depth < 64 && BackingFile(cur) is { } next; depth++)
            yield return cur = next;
    }
}

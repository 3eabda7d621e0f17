
namespace Microagent.Workspaces;

/// <summary>
/// Free space on the host filesystem that holds a state directory, and the workspace's space reserve
/// (docs/ARCHITECTURE.md "Faults"). A full host disk stops QEMU (its default <c>werror=enospc</c>), and the supervisor must still
/// record that: it keeps <see cref="ReserveBytes"/> of real blocks in <c>&lt;ws&gt;/reserve</c> while the guest runs, releases them
/// to write state and events when the disk fills, and takes them back before it resumes the guest.
/// </summary>
internal static class HostSpace
{
    /// <summary>Size of the reserve file (state and event writes while the disk is full need a few KiB).</summary>
    public const long ReserveBytes = 1 << 20;

    /// <summary>Free space (beyond the reserve) needed before a guest stopped on a full disk is resumed.</summary>
    public const long ResumeFreeBytes = 16L << 20;

    /// <summary>Bytes available to this user on the filesystem holding <paramref name="path"/> (statvfs); null when it cannot be read.</summary>
    public static long? FreeBytes(string path)
    {
        try { return new DriveInfo(path).AvailableFreeSpace; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException) { return null; }
    }

    /// <summary>Writes the reserve file with real data (a sparse file would hold no blocks). False when the disk has no room for it.</summary>
    public static bool TakeReserve(string path)
    {
        try
        {
            using var fs = new FileStream(path, new FileStreamOptions
            {
                Mode = FileMode.Create, Access = FileAccess.Write, BufferSize = 0,
                UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
            });
            byte[] block = new byte[64 * 1024];
            Array.Fill(block, (byte)0xA5);
            for (long written = 0; written < ReserveBytes; written += block.Length) fs.Write(block);
            fs.Flush(flushToDisk: true);
            return true;
        }
        catch (IOException)
        {
            ReleaseReserve(path);
            return false;
        }
    }

    /// <summary>Deletes the reserve file (its blocks become free for state writes).</summary>
    public static void ReleaseReserve(string path)
    {
        try { File.Delete(path); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}

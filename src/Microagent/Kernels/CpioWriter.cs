using System.Text;
using Microagent.Errors;

namespace Microagent.Kernels;

/// <summary>
/// Writes an uncompressed cpio archive in the "newc" format the kernel unpacks as an initramfs
/// (Linux <c>Documentation/driver-api/early-userspace/buffer-format.rst</c>):
/// each entry is a 110-byte ASCII header (<c>070701</c> then 13 eight-digit hex fields: ino, mode,
/// uid, gid, nlink, mtime, filesize, devmajor, devminor, rdevmajor, rdevminor, namesize, check),
/// the NUL-terminated name padded to a multiple of 4, the data padded to a multiple of 4; the
/// archive ends with the entry <c>TRAILER!!!</c>.
/// Invariants: output is deterministic (inodes numbered from 1 in write order, mtime 0, uid/gid 0);
/// every parent directory is written before its children (the kernel does not create parents).
/// </summary>
internal sealed class CpioWriter : IDisposable
{
    /// <summary>Magic of the newc format (no checksum).</summary>
    public const string Magic = "070701";
    /// <summary>Name of the end-of-archive entry.</summary>
    public const string Trailer = "TRAILER!!!";

    private const int S_IFDIR = 0x4000;   // include/uapi/linux/stat.h
    private const int S_IFREG = 0x8000;
    private const int S_IFLNK = 0xA000;

    private readonly Stream _out;
    private readonly bool _leaveOpen;
    private readonly HashSet<string> _dirs = new(StringComparer.Ordinal) { "" };
    private readonly HashSet<string> _names = new(StringComparer.Ordinal);
    private uint _nextIno = 1;
    private long _position;
    private bool _finished;

    /// <summary>Writes to <paramref name="output"/>.</summary>
    public CpioWriter(Stream output, bool leaveOpen = false)
    {
        _out = output;
        _leaveOpen = leaveOpen;
    }

    /// <summary>Adds a directory (and any missing parents, mode 0755).</summary>
    public void AddDirectory(string path, int mode = 0b111_101_101)
    {
        string name = Normalize(path);
        if (_dirs.Contains(name)) return;
        EnsureParents(name);
        WriteEntry(name, S_IFDIR | (mode & 0xFFF), nlink: 2, ReadOnlySpan<byte>.Empty);
        _dirs.Add(name);
    }

    /// <summary>Adds a regular file with <paramref name="contents"/>.</summary>
    public void AddFile(string path, ReadOnlySpan<byte> contents, int mode = 0b110_100_100)
    {
        string name = Normalize(path);
        EnsureParents(name);
        WriteEntry(name, S_IFREG | (mode & 0xFFF), nlink: 1, contents);
    }

    /// <summary>Adds a symbolic link pointing at <paramref name="target"/>.</summary>
    public void AddSymlink(string path, string target)
    {
        string name = Normalize(path);
        EnsureParents(name);
        WriteEntry(name, S_IFLNK | 0x1FF, nlink: 1, Encoding.UTF8.GetBytes(target));
    }

    /// <summary>Writes the trailer; no entries may follow.</summary>
    public void Finish()
    {
        if (_finished) return;
        WriteHeader(Trailer, ino: 0, mode: 0, nlink: 1, size: 0);
        _out.Flush();
        _finished = true;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (!_leaveOpen) _out.Dispose();
    }

    private void EnsureParents(string name)
    {
        int slash = name.LastIndexOf('/');
        if (slash > 0) AddDirectory(name[..slash]);
    }

    private void WriteEntry(string name, int mode, int nlink, ReadOnlySpan<byte> data)
    {
        if (_finished) throw new InvalidOperationException("cpio archive already finished");
        if (!_names.Add(name)) throw MicroagentException.Invalid($"initramfs entry `/{name}` added twice");
        WriteHeader(name, _nextIno++, mode, nlink, data.Length);
        _out.Write(data);
        _position += data.Length;
        Pad();
    }

    private void WriteHeader(string name, uint ino, int mode, int nlink, long size)
    {
        if (size > uint.MaxValue) throw MicroagentException.Invalid($"initramfs entry `{name}` is too large for cpio newc");
        byte[] nameBytes = Encoding.UTF8.GetBytes(name);
        var sb = new StringBuilder(110);
        sb.Append(Magic);
        foreach (long field in (long[])[ino, mode, 0, 0, nlink, 0, size, 0, 0, 0, 0, nameBytes.Length + 1, 0])
            sb.Append(((uint)field).ToString("X8"));
        byte[] header = Encoding.ASCII.GetBytes(sb.ToString());
        _out.Write(header);
        _out.Write(nameBytes);
        _out.WriteByte(0);
        _position += header.Length + nameBytes.Length + 1;
        Pad();
    }

    private void Pad()
    {
        int pad = (int)((4 - (_position & 3)) & 3);
        for (int i = 0; i < pad; i++) _out.WriteByte(0);
        _position += pad;
    }

    private static string Normalize(string path)
    {
        string[] parts = path.Split('/', StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length == 0 || parts.Any(p => p is "." or ".."))
            throw MicroagentException.Invalid($"bad initramfs path `{path}`");
        return string.Join('/', parts);
    }
}

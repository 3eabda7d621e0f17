using System.Text;

namespace Microagent.Images;

/// <summary>
/// Extended attributes carried in PAX extended headers (POSIX.1-2008 <c>pax</c> format, "x" typeflag):
/// <c>SCHILY.xattr.NAME=raw bytes</c> (GNU tar, Go archive/tar, Docker) and
/// <c>LIBARCHIVE.xattr.URL-ENCODED-NAME=base64</c> (bsdtar). Records are "LEN KEY=VALUE\n" where LEN
/// counts the whole record, so values may hold any byte.
/// </summary>
internal static class PaxXattrs
{
    /// <summary>Key prefix used by GNU tar, Go and Docker.</summary>
    public const string SchilyPrefix = "SCHILY.xattr.";
    /// <summary>Key prefix used by libarchive.</summary>
    public const string LibarchivePrefix = "LIBARCHIVE.xattr.";

    private const int Block = 512;

    /// <summary>
    /// Parses the raw header blocks of one entry (any "x", "L", "K" blocks, then its ustar header) and
    /// appends the xattrs found. False when the bytes are not a well-formed header sequence.
    /// </summary>
    public static bool TryParse(ReadOnlySpan<byte> headers, List<(string Name, byte[] Value)> into)
    {
        int pos = 0;
        bool foundPax = false;
        while (pos + Block <= headers.Length)
        {
            var h = headers.Slice(pos, Block);
            byte type = h[156];
            if (!TryOctal(h.Slice(124, 12), out long size) || size < 0 || size > headers.Length) return false;
            if (type is (byte)'x' or (byte)'L' or (byte)'K')
            {
                int start = pos + Block;
                if (start + size > headers.Length) return false;
                if (type == (byte)'x')
                {
                    if (!ParseRecords(headers.Slice(start, (int)size), into)) return false;
                    foundPax = true;
                }
                pos = start + (int)((size + Block - 1) / Block * Block);
                continue;
            }
            return foundPax;
        }
        return false;
    }

    private static bool ParseRecords(ReadOnlySpan<byte> data, List<(string, byte[])> into)
    {
        int pos = 0;
        while (pos < data.Length)
        {
            int space = data[pos..].IndexOf((byte)' ');
            if (space <= 0 || !int.TryParse(data.Slice(pos, space), out int len) || len <= space + 1 || pos + len > data.Length) return false;
            var record = data.Slice(pos + space + 1, len - space - 1);
            if (record.Length == 0 || record[^1] != (byte)'\n') return false;
            record = record[..^1];
            int eq = record.IndexOf((byte)'=');
            if (eq <= 0) return false;
            string key = Encoding.UTF8.GetString(record[..eq]);
            var value = record[(eq + 1)..];
            if (key.StartsWith(SchilyPrefix, StringComparison.Ordinal))
                into.Add((key[SchilyPrefix.Length..], value.ToArray()));
            else if (key.StartsWith(LibarchivePrefix, StringComparison.Ordinal))
            {
                try { into.Add((Uri.UnescapeDataString(key[LibarchivePrefix.Length..]), Convert.FromBase64String(Encoding.ASCII.GetString(value)))); }
                catch (FormatException) { return false; }
            }
            pos += len;
        }
        return true;
    }

    private static bool TryOctal(ReadOnlySpan<byte> field, out long value)
    {
        value = 0;
        if ((field[0] & 0x80) != 0) return false; // base-256: never used for header-sized extensions
        bool any = false;
        foreach (byte b in field)
        {
            if (b is (byte)' ' or 0) { if (any) break; continue; }
            if (b is < (byte)'0' or > (byte)'7') return false;
            value = value * 8 + (b - '0');
            any = true;
        }
        return true;
    }
}

/// <summary>
/// Pass-through read stream that counts bytes and keeps those read from a chosen offset on (at most
/// 1 MiB), so the raw header blocks of the next tar entry can be re-parsed.
/// </summary>
internal sealed class TarHeaderRecorder(Stream inner) : Stream
{
    private const int Cap = 1 << 20;
    private readonly MemoryStream _recorded = new();
    private long _from;

    /// <summary>Bytes read so far.</summary>
    public override long Position { get; set; }

    /// <summary>Discards what was recorded and keeps bytes from absolute offset <paramref name="offset"/> on.</summary>
    public void RecordFrom(long offset)
    {
        _recorded.SetLength(0);
        _from = offset;
    }

    /// <summary>The bytes recorded from the offset given to <see cref="RecordFrom"/>, when it was <paramref name="offset"/>.</summary>
    public ReadOnlySpan<byte> RecordedSince(long offset)
        => offset == _from ? _recorded.GetBuffer().AsSpan(0, (int)_recorded.Length) : ReadOnlySpan<byte>.Empty;

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        int n = inner.Read(buffer);
        long start = Position;
        Position += n;
        if (n > 0 && Position > _from && _recorded.Length < Cap)
        {
            int skip = (int)Math.Max(0, _from - start);
            int take = Math.Min(n - skip, Cap - (int)_recorded.Length);
            if (take > 0) _recorded.Write(buffer.Slice(skip, take));
        }
        return n;
    }

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}

using System.Text;

namespace Microagent.Models.Mediation;

/// <summary>
/// Reads HTTP/1.1 messages from one stream (RFC 9112): heads, request bodies (Content-Length or chunked, decoded and bounded)
/// and response bodies relayed as they arrive. Buffered, so pipelined requests are read one after the other; everything a
/// guest can make it hold is bounded by <see cref="HttpLimits"/> (the head by <see cref="HttpLimits.MaxHeadBytes"/>, the buffer
/// is fixed). Time bounds are the caller's tokens.
/// </summary>
internal sealed class Http1Reader(Stream stream, int bufferSize = 64 * 1024)
{
    private readonly byte[] _buf = new byte[bufferSize];
    private int _start, _end;

    /// <summary>Bytes buffered and not yet consumed.</summary>
    public int Buffered => _end - _start;

    /// <summary>Waits until at least one byte is buffered; false on end of stream.</summary>
    public async ValueTask<bool> WaitForDataAsync(CancellationToken ct) => Buffered > 0 || await FillAsync(ct).ConfigureAwait(false);

    /// <summary>
    /// Reads and drops what the peer still sends, until it closes, <paramref name="max"/> bytes or <paramref name="within"/>: before
    /// closing after an error answer, so unread input does not turn the close into a reset that destroys the answer in flight
    /// (RFC 9112 §9.6).
    /// </summary>
    public async Task DrainAsync(long max, TimeSpan within)
    {
        using var cts = new CancellationTokenSource(within);
        _start = _end = 0;
        try
        {
            for (long total = 0; total < max;)
            {
                int n = await stream.ReadAsync(_buf, cts.Token).ConfigureAwait(false);
                if (n == 0) return;
                total += n;
            }
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or ObjectDisposedException) { }
    }

    /// <summary>Reads a request head; null on a clean end of stream before its first byte. Bad input: <see cref="HttpWireException"/>.</summary>
    public async Task<HttpRequestHead?> ReadRequestHeadAsync(HttpLimits limits, CancellationToken ct)
    {
        // RFC 9112 §2.2: a server SHOULD ignore at least one empty line received before the request-line.
        while (true)
        {
            if (Buffered == 0 && !await FillAsync(ct).ConfigureAwait(false)) return null;
            if (Buffered >= 2 && _buf[_start] == '\r' && _buf[_start + 1] == '\n') { _start += 2; continue; }
            if (Buffered == 1 && _buf[_start] == '\r') { if (!await FillAsync(ct).ConfigureAwait(false)) return null; continue; }
            break;
        }
        var (lines, bytes) = await ReadHeadLinesAsync(limits, 431, ct).ConfigureAwait(false);
        string[] parts = lines[0].Split(' ');
        if (parts.Length != 3 || !Http1.IsToken(parts[0])) throw new HttpWireException(400, "malformed request line");
        string target = parts[1];
        if (target.Length == 0 || target[0] != '/' || target.Any(c => c <= ' ' || c >= 0x7f))
            throw new HttpWireException(400, "the request target must be a path (origin-form)");
        int minor = parts[2] switch
        {
            "HTTP/1.1" => 1,
            "HTTP/1.0" => 0,
            _ => throw new HttpWireException(400, "only HTTP/1.0 and HTTP/1.1 are spoken here"),
        };
        var headers = ParseFields(lines, limits, 400);
        if (minor == 1 && headers.All("Host").Count() != 1) throw new HttpWireException(400, "an HTTP/1.1 request needs exactly one Host field");
        return new HttpRequestHead(parts[0], target, minor, headers, bytes);
    }

    /// <summary>Reads a response head (an upstream's); anything malformed is a 502.</summary>
    public async Task<HttpResponseHead> ReadResponseHeadAsync(HttpLimits limits, CancellationToken ct)
    {
        if (Buffered == 0 && !await FillAsync(ct).ConfigureAwait(false)) throw new EndOfStreamException("the runner closed before answering");
        var (lines, bytes) = await ReadHeadLinesAsync(limits, 502, ct).ConfigureAwait(false);
        string line = lines[0];
        if (line.Length < 12 || !line.StartsWith("HTTP/1.", StringComparison.Ordinal) || line[8] != ' '
            || !int.TryParse(line.AsSpan(9, 3), System.Globalization.NumberStyles.None, null, out int status) || status < 100
            || (line.Length > 12 && line[12] != ' '))
            throw new HttpWireException(502, "the runner sent a malformed status line");
        return new HttpResponseHead(status, line.Length > 13 ? line[13..] : "", ParseFields(lines, limits, 502), bytes);
    }

    /// <summary>Reads and decodes a request body (at most <see cref="HttpLimits.MaxBodyBytes"/>).</summary>
    public async Task<byte[]> ReadBodyAsync(BodyFraming framing, long length, HttpLimits limits, CancellationToken ct)
    {
        switch (framing)
        {
            case BodyFraming.None: return [];
            case BodyFraming.Length:
                var body = new byte[length];
                await ReadExactAsync(body, ct).ConfigureAwait(false);
                return body;
            case BodyFraming.Chunked:
                var ms = new MemoryStream();
                await DecodeChunkedAsync(ms, limits.MaxBodyBytes, limits, relay: false, rechunk: false, ct).ConfigureAwait(false);
                return ms.ToArray();
            default: throw new HttpWireException(400, "a request body must have a length");
        }
    }

    /// <summary>
    /// Relays a response body to <paramref name="to"/> as it arrives, flushing after every read (so an event stream is not held
    /// back): a chunked body is re-chunked (extensions and trailers dropped), or with <paramref name="rechunk"/> false written
    /// decoded (for a reader delimited by the close); returns the body bytes relayed.
    /// </summary>
    public async Task<long> RelayBodyAsync(BodyFraming framing, long length, Stream to, HttpLimits limits, bool rechunk, CancellationToken ct)
    {
        switch (framing)
        {
            case BodyFraming.None: return 0;
            case BodyFraming.Length:
                for (long left = length; left > 0;)
                {
                    if (Buffered == 0 && !await FillAsync(ct).ConfigureAwait(false)) throw new EndOfStreamException("the runner closed mid-body");
                    int n = (int)Math.Min(left, Buffered);
                    await to.WriteAsync(_buf.AsMemory(_start, n), ct).ConfigureAwait(false);
                    await to.FlushAsync(ct).ConfigureAwait(false);
                    _start += n;
                    left -= n;
                }
                return length;
            case BodyFraming.Chunked:
                return await DecodeChunkedAsync(to, long.MaxValue, limits with { MaxHeadBytes = 64 * 1024 }, relay: true, rechunk, ct).ConfigureAwait(false);
            default:
                long total = 0;
                while (Buffered > 0 || await FillAsync(ct).ConfigureAwait(false))
                {
                    await to.WriteAsync(_buf.AsMemory(_start, Buffered), ct).ConfigureAwait(false);
                    await to.FlushAsync(ct).ConfigureAwait(false);
                    total += Buffered;
                    _start = _end;
                }
                return total;
        }
    }

    /// <summary>
    /// Decodes a chunked body (RFC 9112 §7.1) into <paramref name="to"/>: a <paramref name="relay"/> (an upstream's answer; errors are
    /// 502) flushes every chunk, written back chunked with <paramref name="rechunk"/>, else decoded. Returns the decoded length.
    /// </summary>
    private async Task<long> DecodeChunkedAsync(Stream to, long max, HttpLimits limits, bool relay, bool rechunk, CancellationToken ct)
    {
        int status = relay ? 502 : 400;
        long total = 0;
        while (true)
        {
            string line = await ReadLineAsync(limits.MaxChunkLineBytes, status, "chunk-size line", ct).ConfigureAwait(false);
            string hex = (line.IndexOf(';') is var semi and >= 0 ? line[..semi] : line).TrimEnd(' ', '\t');
            if (hex.Length is 0 or > 15 || !hex.All(Uri.IsHexDigit)) throw new HttpWireException(status, "malformed chunk size");
            long size = Convert.ToInt64(hex, 16);
            if (size == 0) break;
            if (total + size > max) throw new HttpWireException(413, $"request body over {max} bytes");
            if (rechunk) await to.WriteAsync(Encoding.ASCII.GetBytes($"{size:x}\r\n"), ct).ConfigureAwait(false);
            for (long left = size; left > 0;)
            {
                if (Buffered == 0 && !await FillAsync(ct).ConfigureAwait(false)) throw new HttpWireException(status, "the body ended inside a chunk");
                int n = (int)Math.Min(left, Buffered);
                await to.WriteAsync(_buf.AsMemory(_start, n), ct).ConfigureAwait(false);
                _start += n;
                left -= n;
            }
            total += size;
            if (await ReadLineAsync(2, status, "chunk end", ct).ConfigureAwait(false) != "")
                throw new HttpWireException(status, "a chunk is not followed by CRLF");
            if (rechunk) await to.WriteAsync("\r\n"u8.ToArray(), ct).ConfigureAwait(false);
            if (relay) await to.FlushAsync(ct).ConfigureAwait(false);
        }
        // Trailer fields: read (bounded) and dropped.
        for (int trailerBytes = 0; ;)
        {
            string t = await ReadLineAsync(limits.MaxHeadBytes, status, "trailer", ct).ConfigureAwait(false);
            if (t.Length == 0) break;
            if ((trailerBytes += t.Length + 2) > limits.MaxHeadBytes) throw new HttpWireException(status == 400 ? 431 : 502, "trailer fields too large");
        }
        if (rechunk) await to.WriteAsync("0\r\n\r\n"u8.ToArray(), ct).ConfigureAwait(false);
        if (relay) await to.FlushAsync(ct).ConfigureAwait(false);
        return total;
    }

    private async Task ReadExactAsync(Memory<byte> into, CancellationToken ct)
    {
        int got = 0;
        while (got < into.Length)
        {
            if (Buffered == 0 && !await FillAsync(ct).ConfigureAwait(false)) throw new HttpWireException(400, "the body ended early");
            int n = Math.Min(into.Length - got, Buffered);
            _buf.AsMemory(_start, n).CopyTo(into[got..]);
            _start += n;
            got += n;
        }
    }

    /// <summary>Reads up to the blank line; every line CRLF-terminated; the whole head at most <see cref="HttpLimits.MaxHeadBytes"/>.</summary>
    private async Task<(List<string> Lines, int Bytes)> ReadHeadLinesAsync(HttpLimits limits, int tooLarge, CancellationToken ct)
    {
        int max = Math.Min(limits.MaxHeadBytes, _buf.Length);
        while (true)
        {
            int end = IndexOf("\r\n\r\n"u8, max);
            if (end >= 0)
            {
                var head = _buf.AsSpan(_start, end);
                if (head.IndexOfAny((byte)0, (byte)'\n') is var bad and >= 0 && (head[bad] == 0 || bad == 0 || head[bad - 1] != '\r'))
                    throw new HttpWireException(tooLarge == 502 ? 502 : 400, "bare LF or NUL in the head");
                string text = Encoding.Latin1.GetString(head);
                _start += end + 4;
                var lines = text.Split("\r\n").ToList();
                if (lines.Any(l => l.Contains('\r'))) throw new HttpWireException(tooLarge == 502 ? 502 : 400, "bare CR in the head");
                return (lines, end + 4);
            }
            if (Buffered >= max) throw new HttpWireException(tooLarge, $"the head is over {max} bytes");
            if (!await FillAsync(ct).ConfigureAwait(false))
                throw new HttpWireException(tooLarge == 502 ? 502 : 400, "the connection closed inside a head");
        }
    }

    private static HttpHeaders ParseFields(List<string> lines, HttpLimits limits, int status)
    {
        var headers = new HttpHeaders();
        if (lines.Count - 1 > limits.MaxHeaders) throw new HttpWireException(status == 502 ? 502 : 431, $"more than {limits.MaxHeaders} header fields");
        foreach (string line in lines.Skip(1))
        {
            if (line.Length > 0 && line[0] is ' ' or '\t') throw new HttpWireException(status, "obsolete line folding in a header");
            int colon = line.IndexOf(':');
            if (colon <= 0 || !Http1.IsToken(line[..colon])) throw new HttpWireException(status, "malformed header field");
            string value = line[(colon + 1)..].Trim(' ', '\t');
            if (value.Any(c => c < ' ' && c != '\t' || c == 0x7f)) throw new HttpWireException(status, "control character in a header value");
            headers.Add(line[..colon], value);
        }
        return headers;
    }

    /// <summary>One CRLF-terminated line of at most <paramref name="max"/> bytes (without the CRLF).</summary>
    private async Task<string> ReadLineAsync(int max, int status, string what, CancellationToken ct)
    {
        int limit = Math.Min(max + 2, _buf.Length);
        while (true)
        {
            int end = IndexOf("\r\n"u8, limit);
            if (end >= 0)
            {
                string s = Encoding.Latin1.GetString(_buf, _start, end);
                if (s.Contains('\n') || s.Contains('\r')) throw new HttpWireException(status, $"malformed {what}");
                _start += end + 2;
                return s;
            }
            if (Buffered >= limit) throw new HttpWireException(status, $"{what} too long");
            if (!await FillAsync(ct).ConfigureAwait(false)) throw new HttpWireException(status, $"the connection closed inside a {what}");
        }
    }

    private int IndexOf(ReadOnlySpan<byte> needle, int within) =>
        _buf.AsSpan(_start, Math.Min(Buffered, within)).IndexOf(needle);

    /// <summary>Reads more into the buffer (compacting first); false at end of stream.</summary>
    private async ValueTask<bool> FillAsync(CancellationToken ct)
    {
        if (_start > 0)
        {
            Buffer.BlockCopy(_buf, _start, _buf, 0, Buffered);
            _end -= _start;
            _start = 0;
        }
        if (_end == _buf.Length) return true;
        int n = await stream.ReadAsync(_buf.AsMemory(_end), ct).ConfigureAwait(false);
        _end += n;
        return n > 0;
    }
}

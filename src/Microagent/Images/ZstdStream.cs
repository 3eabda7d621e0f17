using Microagent.Errors;
using Microagent.Interop;

namespace Microagent.Images;

/// <summary>Read-only stream decompressing zstd (one or more concatenated frames) from an inner stream with the system libzstd.</summary>
internal sealed class ZstdStream : Stream
{
    private readonly Stream _inner;
    private readonly ZstdDecompressor _zstd;
    private readonly byte[] _in = new byte[128 * 1024];
    private int _inPos, _inLen;
    private bool _innerDone;
    private nuint _lastHint = 1;

    /// <summary>Wraps <paramref name="inner"/> (disposed with this stream).</summary>
    public ZstdStream(Stream inner)
    {
        _inner = inner;
        try
        {
            _zstd = new ZstdDecompressor();
        }
        catch (DllNotFoundException)
        {
            throw MicroagentException.Unsupported("zstd layers need the system libzstd (libzstd.so.1), which is not installed",
                "install the Debian package libzstd1 (scripts/install.sh)");
        }
    }

    /// <inheritdoc />
    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    /// <inheritdoc />
    public override int Read(Span<byte> buffer)
    {
        if (buffer.Length == 0) return 0;
        while (true)
        {
            if (_inPos == _inLen && !_innerDone)
            {
                _inLen = _inner.Read(_in, 0, _in.Length);
                _inPos = 0;
                if (_inLen == 0) _innerDone = true;
            }
            if (_innerDone && _inPos == _inLen)
            {
                // Flush what the decoder still holds; a truncated frame is an error.
                if (_lastHint == 0) return 0;
                int flushed = Step(ReadOnlySpan<byte>.Empty, buffer);
                if (flushed > 0) return flushed;
                throw new InvalidDataException("zstd: truncated stream");
            }
            int n = Step(_in.AsSpan(_inPos, _inLen - _inPos), buffer);
            if (n > 0) return n;
        }
    }

    private int Step(ReadOnlySpan<byte> input, Span<byte> output)
    {
        _lastHint = _zstd.Decompress(input, output, out int consumed, out int produced);
        _inPos += consumed;
        return produced;
    }

    /// <inheritdoc />
    public override bool CanRead => true;
    /// <inheritdoc />
    public override bool CanSeek => false;
    /// <inheritdoc />
    public override bool CanWrite => false;
    /// <inheritdoc />
    public override long Length => throw new NotSupportedException();
    /// <inheritdoc />
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    /// <inheritdoc />
    public override void Flush() { }
    /// <inheritdoc />
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    /// <inheritdoc />
    public override void SetLength(long value) => throw new NotSupportedException();
    /// <inheritdoc />
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing) { _zstd.Dispose(); _inner.Dispose(); }
        base.Dispose(disposing);
    }
}

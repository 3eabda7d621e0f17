namespace Microagent.Tools;

/// <summary>
/// A write-only sink that keeps the first <c>limit</c> bytes and counts the rest. Invariant: memory use never
/// exceeds the limit, whatever a (possibly hostile) writer sends — for diagnostics such as a guest's stderr.
/// </summary>
internal sealed class CappedBuffer(int limit = 64 * 1024) : Stream
{
    private readonly MemoryStream _kept = new();

    /// <summary>Bytes written beyond the limit and dropped.</summary>
    public long Dropped { get; private set; }

    /// <summary>The kept bytes as UTF-8 text, with a note when some were dropped.</summary>
    public string Text() => System.Text.Encoding.UTF8.GetString(_kept.GetBuffer(), 0, (int)_kept.Length)
                            + (Dropped > 0 ? $" … ({Dropped} more bytes)" : "");

    /// <inheritdoc />
    public override void Write(ReadOnlySpan<byte> buffer)
    {
        int room = (int)Math.Min(buffer.Length, limit - _kept.Length);
        if (room > 0) _kept.Write(buffer[..room]);
        Dropped += buffer.Length - Math.Max(room, 0);
    }

    /// <inheritdoc />
    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    /// <inheritdoc />
    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        Write(buffer.Span);
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
    {
        Write(buffer.AsSpan(offset, count));
        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public override void Flush() { }
    /// <inheritdoc />
    public override bool CanRead => false;
    /// <inheritdoc />
    public override bool CanSeek => false;
    /// <inheritdoc />
    public override bool CanWrite => true;
    /// <inheritdoc />
    public override long Length => _kept.Length + Dropped;
    /// <inheritdoc />
    public override long Position { get => Length; set => throw new NotSupportedException(); }
    /// <inheritdoc />
    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    /// <inheritdoc />
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    /// <inheritdoc />
    public override void SetLength(long value) => throw new NotSupportedException();
}

using System.Text;
using ModelContextProtocol;
using ModelContextProtocol.Protocol;
using ModelContextProtocol.Server;

namespace Microagent.Mcp;

/// <summary>
/// Forwards messages as <c>notifications/progress</c> when the client sent a progress token. Invariants: notifications go out
/// in the order reported, with a strictly increasing progress value; <see cref="DrainAsync"/> completes once every reported
/// message was written, so none arrives after the call's response.
/// </summary>
internal sealed class CallProgress(McpServer server, ProgressToken? token) : IProgress<string>
{
    private readonly object _gate = new();
    private Task _tail = Task.CompletedTask;
    private int _step;

    /// <summary>The client asked for progress.</summary>
    public bool Requested => token is not null;

    public void Report(string value)
    {
        if (token is not { } t) return;
        lock (_gate)
        {
            int step = ++_step;
            var notification = new ProgressNotificationValue { Progress = step, Message = value };
            _tail = _tail.ContinueWith(_ => server.NotifyProgressAsync(t, notification, cancellationToken: CancellationToken.None),
                CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default).Unwrap();
        }
    }

    /// <summary>Waits until every notification reported so far was sent (or failed: a gone client is not this call's error).</summary>
    public async Task DrainAsync()
    {
        Task tail;
        lock (_gate) tail = _tail;
        try { await tail.ConfigureAwait(false); }
        catch (Exception e) when (e is IOException or ObjectDisposedException or OperationCanceledException or InvalidOperationException) { }
    }
}

/// <summary>
/// A write-only sink for one output stream of a command: keeps every byte (the guest already caps them) and reports each chunk
/// as a progress message <c>"stdout: ..."</c> / <c>"stderr: ..."</c>. UTF-8 sequences split across chunks are decoded whole.
/// </summary>
internal sealed class OutputProgress(string stream, IProgress<string> progress) : Stream
{
    private readonly MemoryStream _kept = new();
    private readonly Decoder _decoder = Encoding.UTF8.GetDecoder();

    /// <summary>Everything written.</summary>
    public byte[] Bytes => _kept.ToArray();

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        _kept.Write(buffer);
        var chars = new char[_decoder.GetCharCount(buffer, flush: false)];
        int n = _decoder.GetChars(buffer, chars, flush: false);
        if (n > 0) progress.Report($"{stream}: {new string(chars, 0, n)}");
    }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        Write(buffer.Span);
        return ValueTask.CompletedTask;
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
    {
        Write(buffer.AsSpan(offset, count));
        return Task.CompletedTask;
    }

    public override void Flush() { }
    public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => _kept.Length;
    public override long Position { get => _kept.Length; set => throw new NotSupportedException(); }
    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing) _kept.Dispose();
        base.Dispose(disposing);
    }
}

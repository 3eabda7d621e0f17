using System.Buffers;
using System.Net.Sockets;
using System.Threading.Channels;

namespace Microagent.Vsock;

/// <summary>
/// <see cref="IHostSide"/> over a connected unix stream socket, made by <see cref="HybridMuxer"/> for each hybrid
/// connection (as Firecracker's MuxerConnection). One reader task holds at most one chunk
/// (it reads again only after <see cref="RequestRead"/>); one writer task drains queued writes in order, so a slow
/// host reader stalls only its own connection. Queued write bytes are bounded by the connection's credit.
/// Memory: an idle connection holds no buffer. The reader waits for data with a zero-byte receive, then rents its chunk
/// from <see cref="ArrayPool{T}.Shared"/> and gives it back once the device copied it; queued writes are pooled arrays too.
/// </summary>
internal sealed class UnixHostSide : IHostSide
{
    /// <summary>Largest chunk read from the unix side at once.</summary>
    public const int ChunkSize = 64 * 1024;

    private enum Kind { Data, Control, ShutdownWrite, Close }

    private readonly record struct Item(Kind Kind, byte[]? Buffer, int Length);

    private readonly Socket _socket;
    private readonly Func<Action<VsockDevice>, ValueTask> _post;
    private readonly Action<UnixHostSide>? _onClosed;
    private readonly Channel<Item> _writes = Channel.CreateUnbounded<Item>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
    private readonly SemaphoreSlim _readPermit = new(0);
    private readonly CancellationTokenSource _cts = new();
    private VsockConnection? _connection;
    private int _closed;

    /// <summary>
    /// Wraps (and owns) <paramref name="socket"/>; <paramref name="post"/> runs an action on the device loop;
    /// <paramref name="onClosed"/> runs once, when the socket is closed.
    /// </summary>
    public UnixHostSide(Socket socket, Func<Action<VsockDevice>, ValueTask> post, Action<UnixHostSide>? onClosed = null)
    {
        _socket = socket;
        _post = post;
        _onClosed = onClosed;
    }

    /// <summary>Binds the connection this side belongs to; must be set before <see cref="Established"/>.</summary>
    public void Attach(VsockConnection connection) => _connection = connection;

    /// <inheritdoc />
    public void Established(uint? announceHostPort)
    {
        if (announceHostPort is uint port)
        {
            var line = HybridVsock.OkLine(port);
            _writes.Writer.TryWrite(new Item(Kind.Control, line, line.Length));
        }
        _ = Task.Run(WriteLoop);
        _ = Task.Run(ReadLoop);
    }

    /// <inheritdoc />
    public void Write(byte[] pooledBuffer, int length)
    {
        if (!_writes.Writer.TryWrite(new Item(Kind.Data, pooledBuffer, length))) ArrayPool<byte>.Shared.Return(pooledBuffer);
    }

    /// <inheritdoc />
    public void ShutdownWrite() => _writes.Writer.TryWrite(new Item(Kind.ShutdownWrite, null, 0));

    /// <inheritdoc />
    public void RequestRead() => _readPermit.Release();

    /// <inheritdoc />
    public void Close(bool abort)
    {
        if (abort) Abort();
        else if (!_writes.Writer.TryWrite(new Item(Kind.Close, null, 0))) Abort();
    }

    /// <summary>Closes the socket at once, dropping queued writes (also for a side that never got attached to a connection).</summary>
    public void Abort()
    {
        if (Interlocked.Exchange(ref _closed, 1) != 0) return;
        _writes.Writer.TryComplete();
        _cts.Cancel();
        _socket.Dispose();
        while (_writes.Reader.TryRead(out var item))
            if (item.Kind == Kind.Data) ArrayPool<byte>.Shared.Return(item.Buffer!);
        _onClosed?.Invoke(this);
    }

    /// <summary>Closes the socket at once and has the device reset the guest's end of the connection (a sever).</summary>
    public void Sever()
    {
        var c = _connection;
        Abort();
        if (c is not null) _ = PostFailure("severed by the host");
    }

    private async Task ReadLoop()
    {
        var c = _connection!;
        try
        {
            while (true)
            {
                // Wait for data without holding a buffer, then rent one for this chunk only.
                await _socket.ReceiveAsync(Memory<byte>.Empty, SocketFlags.None, _cts.Token).ConfigureAwait(false);
                byte[] buffer = ArrayPool<byte>.Shared.Rent(ChunkSize);
                int n = await _socket.ReceiveAsync(buffer.AsMemory(0, ChunkSize), SocketFlags.None, _cts.Token).ConfigureAwait(false);
                if (n == 0)
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                    await _post(d => d.OnHostEof(c)).ConfigureAwait(false);
                    return;
                }
                await _post(d => d.OnHostData(c, buffer, n)).ConfigureAwait(false);
                // Cancelled here, the device may still hold the chunk: it is left to the GC rather than returned.
                await _readPermit.WaitAsync(_cts.Token).ConfigureAwait(false);
                ArrayPool<byte>.Shared.Return(buffer);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException || _cts.IsCancellationRequested) { }
        catch (Exception e)
        {
            await PostFailure($"unix read: {e.Message}").ConfigureAwait(false);
        }
    }

    private async Task WriteLoop()
    {
        var c = _connection!;
        try
        {
            await foreach (var item in _writes.Reader.ReadAllAsync().ConfigureAwait(false))
            {
                switch (item.Kind)
                {
                    case Kind.Data:
                        try { await _socket.SendAsync(item.Buffer.AsMemory(0, item.Length), SocketFlags.None, _cts.Token).ConfigureAwait(false); }
                        finally { ArrayPool<byte>.Shared.Return(item.Buffer!); }
                        int written = item.Length;
                        await _post(d => d.OnHostWritten(c, written)).ConfigureAwait(false);
                        break;
                    case Kind.Control:
                        await _socket.SendAsync(item.Buffer.AsMemory(0, item.Length), SocketFlags.None, _cts.Token).ConfigureAwait(false);
                        break;
                    case Kind.ShutdownWrite:
                        _socket.Shutdown(SocketShutdown.Send);
                        break;
                    case Kind.Close:
                        Abort();
                        return;
                }
            }
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException || _cts.IsCancellationRequested) { }
        catch (Exception e)
        {
            await PostFailure($"unix write: {e.Message}").ConfigureAwait(false);
            Abort();
        }
    }

    private async Task PostFailure(string reason)
    {
        if (_connection is not { } c) return;
        try { await _post(d => d.OnHostFailed(c, reason)).ConfigureAwait(false); }
        catch (ChannelClosedException) { }
    }
}

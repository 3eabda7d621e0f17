using System.Diagnostics;
using System.Threading.Channels;
using Microagent.Interop;

namespace Microagent.Guest.Exec;

/// <summary>
/// Drains a child's stdout and stderr pipes on one dedicated thread. Invariant: the pipes are read
/// until end of file (or until shortly after the child exits, when a background descendant keeps
/// them open), whatever the output limit, so the child never blocks on a full pipe; bytes beyond
/// the limit are counted and dropped.
/// </summary>
internal sealed class OutputPump
{
    /// <summary>Largest chunk read (and forwarded in stream mode) at once.</summary>
    public const int ChunkBytes = 64 * 1024;

    private static readonly long IdleAfterExitTicks = Stopwatch.Frequency / 5;      // 200 ms
    private static readonly long MaxAfterExitTicks = Stopwatch.Frequency * 5;        // 5 s

    private readonly SafeFileDescriptor?[] _fds;
    private readonly long _limit;
    private readonly long[] _kept = new long[2];
    private readonly MemoryStream?[] _captured;
    private readonly Channel<(bool IsStderr, byte[] Data)>? _chunks;
    private readonly TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _exitedAt;

    /// <summary>Takes ownership of both pipe read ends; they are closed when draining ends.</summary>
    public OutputPump(SafeFileDescriptor stdoutFd, SafeFileDescriptor stderrFd, long limit, bool stream)
    {
        _fds = [stdoutFd, stderrFd];
        _limit = limit;
        if (stream) _chunks = Channel.CreateBounded<(bool, byte[])>(new BoundedChannelOptions(8) { SingleReader = true, SingleWriter = true });
        _captured = stream ? [null, null] : [new MemoryStream(), new MemoryStream()];
    }

    /// <summary>Chunks in stream mode, completed when draining ends; null in single mode.</summary>
    public ChannelReader<(bool IsStderr, byte[] Data)>? Chunks => _chunks?.Reader;

    /// <summary>Completes when both pipes are drained and closed.</summary>
    public Task Completion => _done.Task;

    public bool StdoutTruncated { get; private set; }
    public bool StderrTruncated { get; private set; }
    public byte[]? Stdout => _captured[0]?.ToArray();
    public byte[]? Stderr => _captured[1]?.ToArray();

    public void Start() => new Thread(Run, 256 * 1024) { IsBackground = true, Name = "exec-output" }.Start();

    /// <summary>The child has exited: stop waiting for end of file once the pipes go quiet.</summary>
    public void NotifyExited() => Interlocked.CompareExchange(ref _exitedAt, Stopwatch.GetTimestamp(), 0);

    private void Run()
    {
        var buffer = new byte[ChunkBytes];
        Span<short> revents = stackalloc short[2];
        try
        {
            while (_fds[0] is not null || _fds[1] is not null)
            {
                long exitedAt = Interlocked.Read(ref _exitedAt);
                int ready = Poll.WaitReadable(_fds, revents, exitedAt == 0 ? 250 : 50);
                if (ready == 0)
                {
                    if (exitedAt != 0 && Stopwatch.GetTimestamp() - exitedAt > IdleAfterExitTicks) break;
                    continue;
                }
                if (exitedAt != 0 && Stopwatch.GetTimestamp() - exitedAt > MaxAfterExitTicks) break;
                for (int i = 0; i < 2; i++)
                {
                    if (_fds[i] is not { } fd || revents[i] == 0) continue;
                    int n;
                    try { n = FileDescriptors.Read(fd, buffer); }
                    catch (SyscallException) { n = 0; }
                    if (n == 0) { fd.Dispose(); _fds[i] = null; continue; }
                    Deliver(i, buffer.AsSpan(0, n));
                }
            }
        }
        catch (Exception e)
        {
            Log.Error($"output pump: {e.Message}");
        }
        finally
        {
            for (int i = 0; i < 2; i++) { _fds[i]?.Dispose(); _fds[i] = null; }
            _chunks?.Writer.TryComplete();
            _done.TrySetResult();
        }
    }

    private void Deliver(int stream, ReadOnlySpan<byte> data)
    {
        long room = _limit - _kept[stream];
        if (data.Length > room)
        {
            if (stream == 0) StdoutTruncated = true; else StderrTruncated = true;
            data = data[..(int)Math.Max(0, room)];
        }
        if (data.IsEmpty) return;
        _kept[stream] += data.Length;
        if (_captured[stream] is { } ms) { ms.Write(data); return; }
        var item = (stream == 1, data.ToArray());
        // Blocking on the bounded channel is the backpressure of stream mode: the host reads as fast as it can.
        while (!_chunks!.Writer.TryWrite(item))
        {
            if (!_chunks.Writer.WaitToWriteAsync().AsTask().GetAwaiter().GetResult()) return;
        }
    }

    /// <summary>Stops forwarding (the receiver is gone); the pump keeps draining and dropping.</summary>
    public void Abandon()
    {
        _chunks?.Writer.TryComplete();
    }
}

using System.Threading.Channels;
using Microagent.Errors;
using Microagent.Protocol;

namespace Microagent.Workspaces;

/// <summary>
/// A live console session: a shell on a pseudo-terminal in the guest (<see cref="WorkspaceManager.ConnectAsync"/>,
/// docs/ARCHITECTURE.md "Console"). Write what is typed to <see cref="Input"/>, read what the terminal prints from
/// <see cref="Output"/> (it ends when the session does), pass size changes to <see cref="ResizeAsync"/>; <see cref="Completion"/>
/// says how it ended. Disposing detaches: the connection closes and the guest hangs the shell up; the workspace keeps running.
/// Thread-safe: input and resizes may come from different threads.
/// </summary>
public sealed class WorkspaceConsole : IAsyncDisposable
{
    private const int MaxInputChunk = 64 * 1024;

    private readonly Stream _connection;
    private readonly SemaphoreSlim _writeGate = new(1, 1);
    private readonly Channel<byte[]> _output = Channel.CreateBounded<byte[]>(new BoundedChannelOptions(64) { SingleWriter = true, SingleReader = true });
    private readonly TaskCompletionSource<ConsoleEnd> _end = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly CancellationTokenSource _closed = new();
    private int _disposed;

    private WorkspaceConsole(string workspace, Stream connection)
    {
        Workspace = workspace;
        _connection = connection;
        Input = new InputStream(this);
        Output = new OutputStream(_output.Reader);
        _ = Task.Run(ReadLoopAsync);
    }

    /// <summary>The workspace's name.</summary>
    public string Workspace { get; }

    /// <summary>Write-only: bytes written here are typed into the guest's terminal.</summary>
    public Stream Input { get; }

    /// <summary>Read-only: what the guest's terminal prints; a read returns 0 once the session has ended and everything was read.</summary>
    public Stream Output { get; }

    /// <summary>Completes when the session ends: the shell exited, or the connection closed (detached, severed, the VM stopped).</summary>
    public Task<ConsoleEnd> Completion => _end.Task;

    /// <summary>
    /// Opens a session over <paramref name="connection"/> (a vsock stream to the guest's console port): sends the request and
    /// waits for the guest's answer. Owns <paramref name="connection"/> from here on; a refusal disposes it and throws.
    /// </summary>
    internal static async Task<WorkspaceConsole> OpenAsync(string workspace, Stream connection, ConsoleRequest request, CancellationToken ct)
    {
        try
        {
            await Frame.WriteAsync(connection, new Request { Type = ConsoleRequestTypes.Console, Console = request }, ProtocolJson.Default.Request, ct).ConfigureAwait(false);
            Response? answer;
            try { answer = await Frame.ReadAsync(connection, ProtocolJson.Default.Response, ct).ConfigureAwait(false); }
            catch (Exception e) when (e is IOException or ProtocolException)
            {
                throw MicroagentException.Transient($"lost the console connection to '{workspace}': {e.Message}", "the VM may have stopped; see `microagent status`", e);
            }
            if (answer is { Type: ResponseTypes.Ok }) return new WorkspaceConsole(workspace, connection);
            if (answer is { Type: ResponseTypes.Error, Error: { } err })
                throw new MicroagentException(ErrorKinds.FromWireName(err.Kind), $"the guest refused the console: {err.Message}",
                    "check the workspace's shell (create --shell) and the image's user and working directory");
            throw MicroagentException.Transient($"the console of '{workspace}' closed before the shell started",
                "the guest agent may predate the console; restart the workspace");
        }
        catch
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>The terminal's new size (1 to 1000 each way); the guest's foreground job gets SIGWINCH.</summary>
    public Task ResizeAsync(int rows, int cols, CancellationToken ct = default)
    {
        if (!ConsoleInfo.IsValidSize(rows, cols))
            throw MicroagentException.Invalid($"terminal size {rows}x{cols} is outside 1..{ConsoleInfo.MaxDimension}");
        return SendAsync(new Request { Type = ConsoleRequestTypes.Resize, Console = new ConsoleRequest { Rows = rows, Cols = cols } }, ct);
    }

    /// <summary>Types <paramref name="data"/> into the terminal (as <see cref="Input"/> does).</summary>
    public async Task WriteAsync(ReadOnlyMemory<byte> data, CancellationToken ct = default)
    {
        while (!data.IsEmpty)
        {
            var chunk = data[..Math.Min(data.Length, MaxInputChunk)];
            await SendAsync(new Request { Type = RequestTypes.Stdin, Data = chunk.ToArray() }, ct).ConfigureAwait(false);
            data = data[chunk.Length..];
        }
    }

    private async Task SendAsync(Request frame, CancellationToken ct)
    {
        if (Completion.IsCompleted || Volatile.Read(ref _disposed) != 0)
            throw new MicroagentException(ErrorKind.Conflict, $"the console session of '{Workspace}' has ended");
        await _writeGate.WaitAsync(ct).ConfigureAwait(false);
        try { await Frame.WriteAsync(_connection, frame, ProtocolJson.Default.Request, ct).ConfigureAwait(false); }
        catch (IOException e) { throw MicroagentException.Transient($"the console session of '{Workspace}' was closed: {e.Message}", null, e); }
        catch (ObjectDisposedException e) { throw new MicroagentException(ErrorKind.Conflict, $"the console session of '{Workspace}' has ended", null, e); }
        finally { _writeGate.Release(); }
    }

    private async Task ReadLoopAsync()
    {
        ConsoleEnd end = new(false, null, null);
        try
        {
            while (true)
            {
                Response? frame = await Frame.ReadAsync(_connection, ProtocolJson.Default.Response, _closed.Token).ConfigureAwait(false);
                if (frame is null) break;
                if (frame is { Type: ResponseTypes.Stdout, Data: { Length: > 0 } data })
                    await _output.Writer.WriteAsync(data, _closed.Token).ConfigureAwait(false);
                else if (frame is { Type: ResponseTypes.Result, Result: { } r })
                {
                    end = new ConsoleEnd(true, r.ExitCode, r.Signal);
                    break;
                }
            }
        }
        catch (Exception)
        {
            // Reset (severed, the VM stopped), closed by DisposeAsync, or garbage: the session is over either way.
        }
        _output.Writer.TryComplete();
        _end.TrySetResult(end);
    }

    /// <summary>Detaches: closes the connection (the guest hangs the shell up). <see cref="Completion"/> then completes.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        await _closed.CancelAsync().ConfigureAwait(false);
        await _connection.DisposeAsync().ConfigureAwait(false);
        _output.Writer.TryComplete();
        _end.TrySetResult(new ConsoleEnd(false, null, null));
    }

    /// <summary>Writes become input frames.</summary>
    private sealed class InputStream(WorkspaceConsole console) : Stream
    {
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => console.WriteAsync(buffer.AsMemory(offset, count)).GetAwaiter().GetResult();
        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) =>
            new(console.WriteAsync(buffer, cancellationToken));
        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            console.WriteAsync(buffer.AsMemory(offset, count), cancellationToken);
    }

    /// <summary>Reads drain the output chunks; 0 at the end.</summary>
    private sealed class OutputStream(ChannelReader<byte[]> chunks) : Stream
    {
        private ReadOnlyMemory<byte> _rest;

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();
        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (buffer.IsEmpty) return 0;
            while (_rest.IsEmpty)
            {
                if (!await chunks.WaitToReadAsync(cancellationToken).ConfigureAwait(false)) return 0;
                if (chunks.TryRead(out byte[]? next)) _rest = next;
            }
            int n = Math.Min(buffer.Length, _rest.Length);
            _rest[..n].CopyTo(buffer);
            _rest = _rest[n..];
            return n;
        }
    }
}

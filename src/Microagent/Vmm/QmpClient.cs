using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Threading.Channels;
using Microagent.Errors;

namespace Microagent.Vmm;

/// <summary>
/// Minimal QMP client (QEMU docs/interop/qmp-spec.rst): newline-delimited JSON over a unix socket.
/// After the greeting, <c>qmp_capabilities</c> enters command mode; each command gets exactly one
/// <c>return</c> or <c>error</c>; asynchronous <c>event</c> messages may arrive at any time. One reader task owns the
/// socket's input: it completes the pending command and queues every event on <see cref="Events"/> (in order, unbounded:
/// QEMU rate-limits the noisy ones). One command at a time. QEMU serves one QMP client per socket, so a process that
/// follows events must send its commands through the same client.
/// </summary>
internal sealed class QmpClient : IAsyncDisposable
{
    private readonly Socket _socket;
    private readonly StreamReader _reader;
    private readonly Stream _stream;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly Channel<QmpEvent> _events = Channel.CreateUnbounded<QmpEvent>(new UnboundedChannelOptions { SingleReader = true });
    private readonly CancellationTokenSource _stop = new();
    private TaskCompletionSource<JsonObject>? _pending;
    private Task? _readLoop;

    private QmpClient(Socket socket)
    {
        _socket = socket;
        _stream = new NetworkStream(socket, ownsSocket: false);
        _reader = new StreamReader(_stream, Encoding.UTF8);
    }

    /// <summary>Events in the order QEMU sent them; completes when the connection ends (QEMU exited or the client was disposed).</summary>
    public ChannelReader<QmpEvent> Events => _events.Reader;

    /// <summary>QEMU version reported in the greeting.</summary>
    public string? QemuVersion { get; private set; }

    /// <summary>Connects, reads the greeting and negotiates capabilities.</summary>
    public static async Task<QmpClient> ConnectAsync(string socketPath, CancellationToken ct = default)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), ct).ConfigureAwait(false);
            var client = new QmpClient(socket);
            var greeting = await client.ReadMessageAsync(ct).ConfigureAwait(false);
            var v = greeting["QMP"]?["version"]?["qemu"];
            if (v is not null) client.QemuVersion = $"{v["major"]}.{v["minor"]}.{v["micro"]}";
            client._readLoop = Task.Run(client.ReadLoopAsync, CancellationToken.None);
            await client.ExecuteAsync("qmp_capabilities", null, ct).ConfigureAwait(false);
            return client;
        }
        catch (Exception e) when (e is SocketException or IOException)
        {
            socket.Dispose();
            throw MicroagentException.Transient($"cannot reach QMP at {socketPath}: {e.Message}", "the VM may have exited; see the serial log", e);
        }
    }

    /// <summary>Runs one command and returns its <c>return</c> value.</summary>
    public async Task<JsonNode?> ExecuteAsync(string command, JsonObject? arguments = null, CancellationToken ct = default)
    {
        await _gate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            var reply = new TaskCompletionSource<JsonObject>(TaskCreationOptions.RunContinuationsAsynchronously);
            Volatile.Write(ref _pending, reply);
            if (_readLoop is { IsCompleted: true }) throw new IOException("QMP connection closed");
            var msg = new JsonObject { ["execute"] = command };
            if (arguments is not null) msg["arguments"] = arguments;
            byte[] line = Encoding.UTF8.GetBytes(msg.ToJsonString() + "\n");
            await _stream.WriteAsync(line, ct).ConfigureAwait(false);
            var answer = await reply.Task.WaitAsync(ct).ConfigureAwait(false);
            if (answer["error"] is JsonObject error)
                throw MicroagentException.Permanent($"QMP {command} failed: {error["class"]}: {error["desc"]}");
            return answer["return"];
        }
        finally
        {
            Volatile.Write(ref _pending, null);
            _gate.Release();
        }
    }

    private async Task ReadLoopAsync()
    {
        Exception? end = null;
        try
        {
            while (true)
            {
                var message = await ReadMessageAsync(_stop.Token).ConfigureAwait(false);
                if (QmpEvent.FromMessage(message) is { } e) _events.Writer.TryWrite(e);
                else Volatile.Read(ref _pending)?.TrySetResult(message);
            }
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or OperationCanceledException)
        {
            end = e as IOException ?? new IOException("QMP connection closed", e);
        }
        finally
        {
            _events.Writer.TryComplete();
            Volatile.Read(ref _pending)?.TrySetException(end ?? new IOException("QMP connection closed"));
        }
    }

    private async Task<JsonObject> ReadMessageAsync(CancellationToken ct)
    {
        string? line = await _reader.ReadLineAsync(ct).ConfigureAwait(false)
            ?? throw new IOException("QMP connection closed");
        try
        {
            return JsonNode.Parse(line) as JsonObject ?? throw new IOException("QMP sent a non-object message");
        }
        catch (JsonException e)
        {
            throw new IOException($"QMP sent malformed JSON: {e.Message}", e);
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        _socket.Dispose();
        if (_readLoop is not null) await _readLoop.ConfigureAwait(false);
        _reader.Dispose();
        _stop.Dispose();
    }
}

using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microagent.Errors;

namespace Microagent.Vmm;

/// <summary>
/// Minimal QMP client (QEMU docs/interop/qmp-spec.rst): newline-delimited JSON over a unix socket.
/// After the greeting, <c>qmp_capabilities</c> enters command mode; each command gets exactly one
/// <c>return</c> or <c>error</c>; asynchronous <c>event</c> messages may arrive at any time and are
/// recorded in <see cref="Events"/>. One command at a time.
/// </summary>
public sealed class QmpClient : IAsyncDisposable
{
    private readonly Socket _socket;
    private readonly StreamReader _reader;
    private readonly Stream _stream;
    private readonly SemaphoreSlim _gate = new(1, 1);

    private QmpClient(Socket socket)
    {
        _socket = socket;
        _stream = new NetworkStream(socket, ownsSocket: false);
        _reader = new StreamReader(_stream, Encoding.UTF8);
    }

    /// <summary>Events received so far (name and data).</summary>
    public List<JsonObject> Events { get; } = [];

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
            var msg = new JsonObject { ["execute"] = command };
            if (arguments is not null) msg["arguments"] = arguments;
            byte[] line = Encoding.UTF8.GetBytes(msg.ToJsonString() + "\n");
            await _stream.WriteAsync(line, ct).ConfigureAwait(false);
            while (true)
            {
                var reply = await ReadMessageAsync(ct).ConfigureAwait(false);
                if (reply.ContainsKey("event")) { lock (Events) Events.Add(reply); continue; }
                if (reply["error"] is JsonObject error)
                    throw MicroagentException.Permanent($"QMP {command} failed: {error["class"]}: {error["desc"]}");
                return reply["return"];
            }
        }
        finally { _gate.Release(); }
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
    public ValueTask DisposeAsync()
    {
        _reader.Dispose();
        _socket.Dispose();
        _gate.Dispose();
        return ValueTask.CompletedTask;
    }
}

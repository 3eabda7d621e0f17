using Microagent.Errors;
using Microagent.Protocol;

namespace Microagent.Agent;

/// <summary>
/// Host side of the host ↔ guest protocol: one connection per request, frames as in <see cref="Frame"/>.
/// The transport is injected (hybrid vsock in a VM, a unix socket for an agent running on the host in tests).
/// </summary>
internal sealed class AgentClient(Func<CancellationToken, Task<Stream>> connect)
{
    private const int StdinChunkBytes = 64 * 1024;

    /// <summary>Round trip that proves the agent serves requests.</summary>
    public async Task PingAsync(CancellationToken ct = default)
    {
        await using var stream = await connect(ct).ConfigureAwait(false);
        await Frame.WriteAsync(stream, new Request { Type = RequestTypes.Ping }, ProtocolJson.Default.Request, ct).ConfigureAwait(false);
        var response = await ReadAsync(stream, ct).ConfigureAwait(false);
        if (response.Type != ResponseTypes.Pong) throw Unexpected(response);
    }

    /// <summary>
    /// Runs one exec. Cancelling <paramref name="ct"/> closes the connection, and the guest kills the command's process group
    /// when its connection closes: a cancelled exec leaves nothing running in the guest. In stream mode, output chunks are written to <paramref name="stdout"/> and
    /// <paramref name="stderr"/> as they arrive (when given); in single mode they come back in the result.
    /// When <paramref name="stdin"/> is given it is streamed to the process until it ends.
    /// </summary>
    public async Task<ExecResult> ExecAsync(ExecRequest request, Stream? stdin = null, Stream? stdout = null, Stream? stderr = null,
        CancellationToken ct = default)
    {
        request.StdinStream = stdin is not null;
        await using var stream = await connect(ct).ConfigureAwait(false);
        await Frame.WriteAsync(stream, new Request { Type = RequestTypes.Exec, Exec = request }, ProtocolJson.Default.Request, ct).ConfigureAwait(false);

        using var pumpCts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        Task pump = stdin is null ? Task.CompletedTask : PumpStdinAsync(stdin, stream, pumpCts.Token);
        try
        {
            while (true)
            {
                var response = await ReadAsync(stream, ct).ConfigureAwait(false);
                switch (response.Type)
                {
                    case ResponseTypes.Stdout:
                        if (stdout is not null && response.Data is { Length: > 0 } o)
                        {
                            await stdout.WriteAsync(o, ct).ConfigureAwait(false);
                            await stdout.FlushAsync(ct).ConfigureAwait(false);
                        }
                        break;
                    case ResponseTypes.Stderr:
                        if (stderr is not null && response.Data is { Length: > 0 } e)
                        {
                            await stderr.WriteAsync(e, ct).ConfigureAwait(false);
                            await stderr.FlushAsync(ct).ConfigureAwait(false);
                        }
                        break;
                    case ResponseTypes.Result when response.Result is not null:
                        return response.Result;
                    default:
                        throw Unexpected(response);
                }
            }
        }
        finally
        {
            await pumpCts.CancelAsync().ConfigureAwait(false);
            try { await pump.ConfigureAwait(false); } catch (Exception) { /* the exec ended; stdin is moot */ }
        }
    }

    /// <summary>Asks the guest to sync and power off; returns once acknowledged.</summary>
    public async Task ShutdownAsync(CancellationToken ct = default)
    {
        await using var stream = await connect(ct).ConfigureAwait(false);
        await Frame.WriteAsync(stream, new Request { Type = RequestTypes.Shutdown }, ProtocolJson.Default.Request, ct).ConfigureAwait(false);
        var response = await ReadAsync(stream, ct).ConfigureAwait(false);
        if (response.Type != ResponseTypes.Ok) throw Unexpected(response);
    }

    /// <summary>
    /// Sets the guest's wall clock to <paramref name="now"/> (after a resume or restore); returns once acknowledged. Most callers
    /// want <see cref="GuestClock.SyncAsync"/>, which also checks that the clock stayed where it was set.
    /// </summary>
    public async Task SetClockAsync(DateTimeOffset now, CancellationToken ct = default)
    {
        long unixNs = (now.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks) * 100;
        await using var stream = await connect(ct).ConfigureAwait(false);
        await Frame.WriteAsync(stream, new Request { Type = RequestTypes.SetClock, ClockUnixNs = unixNs }, ProtocolJson.Default.Request, ct).ConfigureAwait(false);
        var response = await ReadAsync(stream, ct).ConfigureAwait(false);
        if (response.Type != ResponseTypes.Ok) throw Unexpected(response);
    }

    /// <summary>The guest's wall clock, read by a ping round trip (null when the agent does not report it).</summary>
    public async Task<DateTimeOffset?> ReadClockAsync(CancellationToken ct = default)
    {
        await using var stream = await connect(ct).ConfigureAwait(false);
        await Frame.WriteAsync(stream, new Request { Type = RequestTypes.Ping }, ProtocolJson.Default.Request, ct).ConfigureAwait(false);
        var response = await ReadAsync(stream, ct).ConfigureAwait(false);
        if (response.Type != ResponseTypes.Pong) throw Unexpected(response);
        return response.ClockUnixNs is { } ns ? DateTimeOffset.UnixEpoch.AddTicks(ns / 100) : null;
    }

    /// <summary>Mounts the data disk named by its virtio serial (Mounts.cs); returns once mounted.</summary>
    public async Task MountAsync(MountRequest mount, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(mount);
        await using var stream = await connect(ct).ConfigureAwait(false);
        await Frame.WriteAsync(stream, new Request { Type = RequestTypes.Mount, Mount = mount }, ProtocolJson.Default.Request, ct).ConfigureAwait(false);
        var response = await ReadAsync(stream, ct).ConfigureAwait(false);
        if (response.Type != ResponseTypes.Ok) throw Unexpected(response);
    }

    /// <summary>Mixes <paramref name="seed"/> (host entropy) into the guest kernel's RNG (after a restore or fork); returns once acknowledged.</summary>
    public Task ReseedAsync(byte[] seed, CancellationToken ct = default) =>
        RequestOkAsync(new Request { Type = RequestTypes.Reseed, Data = seed }, ct);

    /// <summary>Gives the guest its own hostname and machine-id (a fork of a snapshot); returns once acknowledged.</summary>
    public Task SetIdentityAsync(string hostname, string machineId, CancellationToken ct = default) =>
        RequestOkAsync(new Request { Type = RequestTypes.Identity, Hostname = hostname, MachineId = machineId }, ct);

    private async Task RequestOkAsync(Request request, CancellationToken ct)
    {
        await using var stream = await connect(ct).ConfigureAwait(false);
        await Frame.WriteAsync(stream, request, ProtocolJson.Default.Request, ct).ConfigureAwait(false);
        var response = await ReadAsync(stream, ct).ConfigureAwait(false);
        if (response.Type != ResponseTypes.Ok) throw Unexpected(response);
    }

    /// <summary>Sets up the guest's network path in <paramref name="mode"/> (agent <c>network</c>; docs/ARCHITECTURE.md "Networking").</summary>
    public async Task SetUpNetworkAsync(string mode, CancellationToken ct = default)
    {
        await using var stream = await connect(ct).ConfigureAwait(false);
        await Frame.WriteAsync(stream, new Request { Type = RequestTypes.Network, Network = new NetworkSetup { Mode = mode } }, ProtocolJson.Default.Request, ct).ConfigureAwait(false);
        var response = await ReadAsync(stream, ct).ConfigureAwait(false);
        if (response.Type != ResponseTypes.Ok) throw Unexpected(response);
    }

    /// <summary>Starts the guest's model forward on 127.0.0.1:11434 (agent <c>model-forward</c>; docs/ARCHITECTURE.md "Model runner"); idempotent.</summary>
    public Task StartModelForwardAsync(CancellationToken ct = default) => RequestOkAsync(new Request { Type = RequestTypes.ModelForward }, ct);

    /// <summary>The guest's network counters (agent <c>net-stats</c>).</summary>
    public async Task<NetStats> NetStatsAsync(CancellationToken ct = default)
    {
        await using var stream = await connect(ct).ConfigureAwait(false);
        await Frame.WriteAsync(stream, new Request { Type = RequestTypes.NetStats }, ProtocolJson.Default.Request, ct).ConfigureAwait(false);
        var response = await ReadAsync(stream, ct).ConfigureAwait(false);
        return response is { Type: ResponseTypes.NetStats, NetStats: { } stats } ? stats : throw Unexpected(response);
    }

    /// <summary>The guest's memory and uptime (agent <c>guest-stats</c>, docs/ARCHITECTURE.md "Stats").</summary>
    public async Task<GuestStats> GuestStatsAsync(CancellationToken ct = default)
    {
        await using var stream = await connect(ct).ConfigureAwait(false);
        await Frame.WriteAsync(stream, new Request { Type = RequestTypes.GuestStats }, ProtocolJson.Default.Request, ct).ConfigureAwait(false);
        var response = await ReadAsync(stream, ct).ConfigureAwait(false);
        return response is { Type: ResponseTypes.GuestStats, GuestStats: { } stats } ? stats : throw Unexpected(response);
    }

    /// <summary>
    /// A connection to the guest's 127.0.0.1:<paramref name="port"/> (agent <c>forward</c>, published ports): after the ok the
    /// returned stream carries raw bytes both ways; the caller disposes it. Nothing listening there is a <c>not_found</c> error.
    /// </summary>
    public async Task<Stream> ForwardAsync(int port, CancellationToken ct = default)
    {
        var stream = await connect(ct).ConfigureAwait(false);
        try
        {
            await Frame.WriteAsync(stream, new Request { Type = RequestTypes.Forward, ForwardPort = port }, ProtocolJson.Default.Request, ct).ConfigureAwait(false);
            var response = await ReadAsync(stream, ct).ConfigureAwait(false);
            if (response.Type != ResponseTypes.Ok) throw Unexpected(response);
            return stream;
        }
        catch
        {
            await stream.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    private static async Task PumpStdinAsync(Stream source, Stream connection, CancellationToken ct)
    {
        var buffer = new byte[StdinChunkBytes];
        while (true)
        {
            int n = await source.ReadAsync(buffer, ct).ConfigureAwait(false);
            var frame = new Request { Type = RequestTypes.Stdin, Data = n == 0 ? null : buffer.AsSpan(0, n).ToArray(), Eof = n == 0 };
            await Frame.WriteAsync(connection, frame, ProtocolJson.Default.Request, ct).ConfigureAwait(false);
            if (n == 0) return;
        }
    }

    private static async Task<Response> ReadAsync(Stream stream, CancellationToken ct)
    {
        try
        {
            return await Frame.ReadAsync(stream, ProtocolJson.Default.Response, ct).ConfigureAwait(false)
                ?? throw MicroagentException.Transient("the guest agent closed the connection without answering",
                    "the VM may have stopped; see the serial log");
        }
        catch (ProtocolException e)
        {
            throw MicroagentException.Permanent($"the guest agent sent an invalid frame: {e.Message}", null, e);
        }
        catch (IOException e)
        {
            throw MicroagentException.Transient($"lost the connection to the guest agent: {e.Message}", "the VM may have stopped; see the serial log", e);
        }
    }

    private static MicroagentException Unexpected(Response response) => response.Type == ResponseTypes.Error && response.Error is { } err
        ? new MicroagentException(ErrorKinds.FromWireName(err.Kind), $"the guest agent refused the request: {err.Message}")
        : MicroagentException.Permanent($"the guest agent sent an unexpected '{response.Type}' frame");
}

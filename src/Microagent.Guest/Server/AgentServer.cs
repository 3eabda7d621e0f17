using System.Threading.Channels;
using Microagent.Guest.Exec;
using Microagent.Protocol;

namespace Microagent.Guest.Server;

/// <summary>
/// Serves one request per connection (docs/ARCHITECTURE.md "Host-guest protocol"). Invariant: nothing a peer
/// sends can throw out of <see cref="HandleAsync"/> — the agent is PID 1 and its exit panics the kernel.
/// </summary>
internal sealed class AgentServer
{
    private readonly ExecEngine _engine;
    private readonly ExecJobs _jobs;
    private readonly Action _shutdown;

    /// <summary>Creates the server; <paramref name="shutdown"/> runs after a shutdown request is acknowledged.</summary>
    public AgentServer(ExecEngine engine, Action shutdown)
    {
        _engine = engine;
        _jobs = new ExecJobs(engine);
        _shutdown = shutdown;
    }

    /// <summary>Reads one request from <paramref name="connection"/>, answers it, and disposes the connection.</summary>
    public async Task HandleAsync(Stream connection)
    {
        try
        {
            await using (connection.ConfigureAwait(false))
            {
                Request? request;
                try
                {
                    request = await Frame.ReadAsync(connection, ProtocolJson.Default.Request).ConfigureAwait(false);
                }
                catch (ProtocolException e)
                {
                    await SendError(connection, "invalid", e.Message).ConfigureAwait(false);
                    return;
                }
                if (request is null) return;
                await DispatchAsync(connection, request).ConfigureAwait(false);
            }
        }
        catch (Exception e)
        {
            Log.Error($"connection: {e.GetType().Name}: {e.Message}");
        }
    }

    private async Task DispatchAsync(Stream connection, Request request)
    {
        if (request.Version != ProtocolInfo.Version)
        {
            await SendError(connection, "unsupported", $"protocol version {request.Version} (agent speaks {ProtocolInfo.Version})").ConfigureAwait(false);
            return;
        }
        switch (request.Type)
        {
            case RequestTypes.Ping:
                await Send(connection, new Response { Type = ResponseTypes.Pong, ClockUnixNs = WallClockNs() }).ConfigureAwait(false);
                return;
            case RequestTypes.Exec:
                await ExecAsync(connection, request.Exec).ConfigureAwait(false);
                return;
            case RequestTypes.Shutdown:
                await Send(connection, new Response { Type = ResponseTypes.Ok }).ConfigureAwait(false);
                _shutdown();
                return;
            case RequestTypes.SetClock:
                await SetClockAsync(connection, request.ClockUnixNs).ConfigureAwait(false);
                return;
            case RequestTypes.Mount:
                await MountAsync(connection, request.Mount).ConfigureAwait(false);
                return;
            case RequestTypes.Network:
                await NetworkRequests.NetworkAsync(connection, request.Network).ConfigureAwait(false);
                return;
            case RequestTypes.Forward:
                await NetworkRequests.ForwardAsync(connection, request.ForwardPort).ConfigureAwait(false);
                return;
            case RequestTypes.ModelForward:
                await NetworkRequests.ModelForwardAsync(connection).ConfigureAwait(false);
                return;
            case RequestTypes.NetStats:
                await NetworkRequests.NetStatsAsync(connection).ConfigureAwait(false);
                return;
            case RequestTypes.GuestStats:
                await Send(connection, GuestStatsResponse()).ConfigureAwait(false);
                return;
            case RequestTypes.Reseed:
                await Send(connection, CloneHygiene.Reseed(request.Data)).ConfigureAwait(false);
                return;
            case RequestTypes.Identity:
                await Send(connection, CloneHygiene.Identity(request.Hostname, request.MachineId)).ConfigureAwait(false);
                return;
            case RequestTypes.Stdin:
                await SendError(connection, "invalid", "stdin frame without a streaming exec").ConfigureAwait(false);
                return;
            default:
                await SendError(connection, "unsupported", $"unknown request type '{request.Type}'").ConfigureAwait(false);
                return;
        }
    }

    private static async Task SetClockAsync(Stream connection, long? unixNs)
    {
        if (unixNs is not > 0)
        {
            await SendError(connection, "invalid", "set-clock needs clockUnixNs > 0").ConfigureAwait(false);
            return;
        }
        try { Interop.Clock.SetRealtime(unixNs.Value); }
        catch (IOException e)
        {
            await SendError(connection, "permanent", $"cannot set the clock: {e.Message}").ConfigureAwait(false);
            return;
        }
        await Send(connection, new Response { Type = ResponseTypes.Ok, ClockUnixNs = WallClockNs() }).ConfigureAwait(false);
    }

    /// <summary>The guest's memory and uptime from its own /proc (docs/ARCHITECTURE.md "Stats").</summary>
    private static Response GuestStatsResponse()
    {
        try
        {
            var stats = ProcKilobytes.Guest(File.ReadAllText("/proc/meminfo"), File.ReadAllText("/proc/uptime"));
            return new Response { Type = ResponseTypes.GuestStats, GuestStats = stats };
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return new Response { Type = ResponseTypes.Error, Error = new ProtocolError { Kind = "permanent", Message = $"cannot read /proc: {e.Message}" } };
        }
    }

    /// <summary>The guest's wall clock (CLOCK_REALTIME), in nanoseconds since the Unix epoch: the host checks it after a set-clock.</summary>
    private static long WallClockNs() => (DateTimeOffset.UtcNow.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks) * 100;

    private static async Task MountAsync(Stream connection, MountRequest? mount)
    {
        string? error = await Task.Run(() => Init.DataDisks.Mount(mount)).ConfigureAwait(false);
        if (error is null) await Send(connection, new Response { Type = ResponseTypes.Ok }).ConfigureAwait(false);
        else await SendError(connection, "permanent", error).ConfigureAwait(false);
    }

    private async Task ExecAsync(Stream connection, ExecRequest? exec)
    {
        if (exec is null || exec.Argv.Length == 0 || string.IsNullOrEmpty(exec.Argv[0]))
        {
            await SendError(connection, "invalid", "exec needs a non-empty argv").ConfigureAwait(false);
            return;
        }
        if (exec.Mode is not (ExecModes.Single or ExecModes.Stream))
        {
            await SendError(connection, "invalid", $"unknown exec mode '{exec.Mode}'").ConfigureAwait(false);
            return;
        }
        if (exec.Argv.Concat(exec.Env ?? []).Any(s => s.Contains('\0')) || (exec.Cwd?.Contains('\0') ?? false))
        {
            await SendError(connection, "invalid", "argv, env and cwd must not contain NUL").ConfigureAwait(false);
            return;
        }

        if (exec.JobId is not null)
        {
            await JobAsync(connection, exec).ConfigureAwait(false);
            return;
        }

        Channel<byte[]>? stdin = exec.StdinStream
            ? Channel.CreateBounded<byte[]>(new BoundedChannelOptions(16) { SingleReader = true, SingleWriter = true })
            : null;
        // The host closing the connection (a cancelled call, a killed client) kills the process group: an exec never outlives its caller.
        using var hostGone = new CancellationTokenSource();
        Task watcher = WatchConnectionAsync(connection, stdin?.Writer, hostGone);

        // Writes to the connection are serialized: chunks come from one forwarder, the result after it.
        Func<bool, byte[], ValueTask>? onChunk = exec.Mode == ExecModes.Stream
            ? (isStderr, data) => new ValueTask(Send(connection, new Response { Type = isStderr ? ResponseTypes.Stderr : ResponseTypes.Stdout, Data = data }))
            : null;
        ExecResult result = await _engine.RunAsync(exec, stdin?.Reader, onChunk, hostGone.Token).ConfigureAwait(false);
        stdin?.Writer.TryComplete();
        if (hostGone.IsCancellationRequested)
        {
            Log.Info($"exec: the host closed the connection; killed process group of '{exec.Argv[0]}'");
            return;
        }
        await Send(connection, new Response { Type = ResponseTypes.Result, Result = result }).ConfigureAwait(false);
        _ = watcher;
    }

    /// <summary>
    /// A job (<see cref="ExecRequest.JobId"/>): starts it or attaches to it, and answers its result on this connection when it
    /// ends. Unlike a plain exec, the host going away leaves the command running; the next connection with the id gets the result.
    /// </summary>
    private async Task JobAsync(Stream connection, ExecRequest exec)
    {
        if (exec.Mode != ExecModes.Single || exec.StdinStream)
        {
            await SendError(connection, "invalid", "a job runs in single mode without streamed stdin").ConfigureAwait(false);
            return;
        }
        var job = _jobs.StartOrAttach(exec, out bool started);
        Log.Info($"job '{exec.JobId}': {(started ? "started" : "attached")}");
        using var hostGone = new CancellationTokenSource();
        Task watcher = WatchConnectionAsync(connection, null, hostGone);
        try { await job.WaitAsync(hostGone.Token).ConfigureAwait(false); }
        catch (OperationCanceledException)
        {
            Log.Info($"job '{exec.JobId}': the host closed the connection; the job keeps running");
            return;
        }
        await Send(connection, new Response { Type = ResponseTypes.Result, Result = await job.ConfigureAwait(false) }).ConfigureAwait(false);
        _ = watcher;
    }

    /// <summary>
    /// Reads the connection for as long as the exec runs: stdin frames feed <paramref name="stdin"/> (when the request streams it);
    /// end of stream or a broken connection fires <paramref name="hostGone"/>. Ends when the connection is disposed after the result.
    /// </summary>
    private static async Task WatchConnectionAsync(Stream connection, ChannelWriter<byte[]>? stdin, CancellationTokenSource hostGone)
    {
        try
        {
            while (true)
            {
                Request? frame = await Frame.ReadAsync(connection, ProtocolJson.Default.Request).ConfigureAwait(false);
                if (frame is null) break;
                if (frame.Type != RequestTypes.Stdin || stdin is null)
                {
                    Log.Error($"exec: unexpected '{frame.Type}' frame during an exec");
                    continue;
                }
                if (frame.Data is { Length: > 0 } data) await stdin.WriteAsync(data).ConfigureAwait(false);
                if (frame.Eof) stdin.TryComplete();
            }
        }
        catch (Exception)
        {
            // Connection reset, closed under us after the result, or garbage: the host is no longer listening either way.
        }
        stdin?.TryComplete();
        try { hostGone.Cancel(); }
        catch (ObjectDisposedException) { } // the exec had already ended and answered
    }

    private static Task Send(Stream connection, Response response) =>
        Frame.WriteAsync(connection, response, ProtocolJson.Default.Response);

    private static Task SendError(Stream connection, string kind, string message) =>
        Send(connection, new Response { Type = ResponseTypes.Error, Error = new ProtocolError { Kind = kind, Message = message } });
}

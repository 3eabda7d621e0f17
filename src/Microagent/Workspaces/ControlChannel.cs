using System.Net.Sockets;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using Microagent.Errors;
using Microagent.Mediation;
using Microagent.Networking;
using Microagent.Protocol;

namespace Microagent.Workspaces;

// The supervisor's control channel (docs/ARCHITECTURE.md "Control channel"): <ws>/control.sock (0600), one request and one
// response per connection, each a frame (4-byte big-endian length + UTF-8 JSON, like the guest protocol) of at most
// ControlChannel.MaxFrameBytes; a connection that has not finished within ControlChannel.Timeout is dropped (server) or
// fails as transient (client).

/// <summary>What a control request asks. On the wire: the names below (kebab-case, as the channel has always used).</summary>
[JsonConverter(typeof(ControlVerbJsonConverter))]
internal enum ControlVerb
{
    /// <summary>A name this supervisor does not know (an older or newer peer).</summary>
    Unknown,
    /// <summary><c>halt</c>: graceful power-off within <see cref="ControlRequest.TimeoutMs"/>; ends halted.</summary>
    Halt,
    /// <summary><c>kill</c>: force stop; ends stopped.</summary>
    Kill,
    /// <summary><c>mediation-status</c>: the mediation channel's readiness, after a probe of its target.</summary>
    MediationStatus,
    /// <summary><c>sever-mediation</c>: sever the mediation channel, then report as <see cref="MediationStatus"/>.</summary>
    SeverMediation,
    /// <summary><c>pause</c>: freeze the vCPUs (QMP <c>stop</c>) with <see cref="ControlRequest.Reason"/>; ends paused.</summary>
    Pause,
    /// <summary><c>resume</c>: thaw the vCPUs (QMP <c>cont</c>) and set the guest clock; ends running.</summary>
    Resume,
    /// <summary><c>network-status</c>: the network's mode, published ports and egress counters.</summary>
    NetworkStatus,
    /// <summary><c>sever-network</c>: close every egress connection, stop DNS, close the published listeners, refuse new ones; then report as <see cref="NetworkStatus"/>.</summary>
    SeverNetwork,
    /// <summary><c>console-status</c>: whether console sessions are severed, and how many are open (docs/ARCHITECTURE.md "Console").</summary>
    ConsoleStatus,
    /// <summary><c>sever-console</c>: close every console session and refuse new ones until the next start; then report as <see cref="ConsoleStatus"/>.</summary>
    SeverConsole,
    /// <summary><c>snapshot</c>: capture snapshot <see cref="ControlRequest.Tag"/> (docs/ARCHITECTURE.md "Snapshots"); the state stays what it was.</summary>
    Snapshot,
    /// <summary><c>stats</c>: the supervisor's share of a stats sample (drive I/O, network bytes, guest memory; docs/ARCHITECTURE.md "Stats").</summary>
    Stats,
    /// <summary>
    /// <c>quarantine</c> (docs/ARCHITECTURE.md "Quarantine"): stage <c>contain</c> fences, freezes and severs; stage <c>finish</c>
    /// takes the forensic snapshot (when <see cref="ControlRequest.Capture"/>) and stops the VM. Each phase goes to the containment record.
    /// </summary>
    Quarantine,
}

/// <summary>Wire names of <see cref="ControlVerb"/>; an unknown name reads as <see cref="ControlVerb.Unknown"/> (answered, not dropped).</summary>
internal sealed class ControlVerbJsonConverter : JsonConverter<ControlVerb>
{
    private static readonly (ControlVerb Verb, string Name)[] Names =
    [
        (ControlVerb.Halt, "halt"), (ControlVerb.Kill, "kill"),
        (ControlVerb.MediationStatus, "mediation-status"), (ControlVerb.SeverMediation, "sever-mediation"),
        (ControlVerb.Pause, "pause"), (ControlVerb.Resume, "resume"), (ControlVerb.Snapshot, "snapshot"),
        (ControlVerb.NetworkStatus, "network-status"), (ControlVerb.SeverNetwork, "sever-network"),
        (ControlVerb.Stats, "stats"),
        (ControlVerb.Quarantine, "quarantine"),
        (ControlVerb.ConsoleStatus, "console-status"), (ControlVerb.SeverConsole, "sever-console"),
    ];

    /// <summary>The wire name of <paramref name="verb"/>.</summary>
    public static string WireName(ControlVerb verb) => Array.Find(Names, n => n.Verb == verb).Name ?? "unknown";

    /// <inheritdoc />
    public override ControlVerb Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        if (reader.TokenType != JsonTokenType.String) throw new JsonException("a control verb is a string");
        string? name = reader.GetString();
        return Array.Find(Names, n => n.Name == name).Verb;
    }

    /// <inheritdoc />
    public override void Write(Utf8JsonWriter writer, ControlVerb value, JsonSerializerOptions options) => writer.WriteStringValue(WireName(value));
}

/// <summary>Control-socket request (CLI/library → supervisor).</summary>
internal sealed class ControlRequest
{
    /// <summary>The verb.</summary>
    [JsonPropertyName("type")] public ControlVerb Type { get; set; }
    /// <summary>halt: how long the guest may take to power off.</summary>
    [JsonPropertyName("timeoutMs")] public long? TimeoutMs { get; set; }
    /// <summary>halt, kill: why, as the caller said it (recorded in the stop's events); pause: the user's reason (the state's detail).</summary>
    [JsonPropertyName("reason")] public string? Reason { get; set; }
    /// <summary>snapshot: the tag to capture.</summary>
    [JsonPropertyName("tag")] public string? Tag { get; set; }
    /// <summary>quarantine: <see cref="QuarantineStages"/>.</summary>
    [JsonPropertyName("stage")] public string? Stage { get; set; }
    /// <summary>quarantine: take the forensic snapshot (not <c>--no-capture</c>).</summary>
    [JsonPropertyName("capture")] public bool? Capture { get; set; }
}

/// <summary>The two stages of a <c>quarantine</c> control request; the library severs the console between them (docs/ARCHITECTURE.md "Quarantine").</summary>
internal static class QuarantineStages
{
    /// <summary>Fence, freeze, sever network, mediation and vsock proxies.</summary>
    public const string Contain = "contain";
    /// <summary>The forensic snapshot, then stop the VM.</summary>
    public const string Finish = "finish";
}

/// <summary>Control-socket response (supervisor → CLI/library).</summary>
internal sealed class ControlResponse
{
    /// <summary>The request was accepted.</summary>
    [JsonPropertyName("ok")] public bool Ok { get; set; }
    /// <summary>Why not.</summary>
    [JsonPropertyName("error")] public string? Error { get; set; }
    /// <summary>Current state.</summary>
    [JsonPropertyName("state")] public WorkspaceState? State { get; set; }
    /// <summary>Open vsock connections through the backend.</summary>
    [JsonPropertyName("activeConnections")] public int ActiveConnections { get; set; }
    /// <summary>Last activity.</summary>
    [JsonPropertyName("lastActivity")] public DateTimeOffset? LastActivity { get; set; }
    /// <summary>snapshot: the tag captured.</summary>
    [JsonPropertyName("tag")] public string? Tag { get; set; }
    /// <summary>mediation-status and sever-mediation: the channel's readiness (after a probe of the target).</summary>
    [JsonPropertyName("mediation")] public MediationReadiness? Mediation { get; set; }
    /// <summary>network-status and sever-network: the network of this boot.</summary>
    [JsonPropertyName("network")] public NetworkStatus? Network { get; set; }
    /// <summary>stats: what the supervisor measures.</summary>
    [JsonPropertyName("stats")] public SupervisorStats? Stats { get; set; }
    /// <summary>console-status and sever-console: the console sessions of this boot.</summary>
    [JsonPropertyName("console")] public ConsoleStatus? Console { get; set; }
}

/// <summary>The supervisor's share of a stats sample (the library adds the /proc figures of QEMU and the supervisor).</summary>
internal sealed class SupervisorStats
{
    /// <summary>Every drive of this boot, root first (QMP <c>query-blockstats</c>); empty when QMP did not answer.</summary>
    [JsonPropertyName("disks")] public List<DiskIoStats> Disks { get; set; } = [];
    /// <summary>Bytes through the egress broker and the published ports.</summary>
    [JsonPropertyName("network")] public NetworkIoStats? Network { get; set; }
    /// <summary>The guest's memory (agent <c>guest-stats</c>); null when it did not answer within a second.</summary>
    [JsonPropertyName("guestMemory")] public GuestMemoryStats? GuestMemory { get; set; }
}

/// <summary>Source-generated JSON of the control frames (AOT-safe).</summary>
[JsonSourceGenerationOptions(WriteIndented = false, PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(ControlRequest))]
[JsonSerializable(typeof(ControlResponse))]
internal sealed partial class ControlJson : JsonSerializerContext;

/// <summary>Limits and framing shared by both ends.</summary>
internal static class ControlChannel
{
    /// <summary>Largest control frame either side accepts (requests are tens of bytes, responses well under 4 KiB).</summary>
    public const int MaxFrameBytes = 64 * 1024;

    /// <summary>Longest a control connection may take, connect to response.</summary>
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    /// <summary>Longest a <c>snapshot</c> request may take (it saves the guest's memory to disk).</summary>
    public static readonly TimeSpan SnapshotTimeout = TimeSpan.FromSeconds(120);

    /// <summary>How long a request of <paramref name="verb"/> may take.</summary>
    public static TimeSpan TimeoutOf(ControlVerb verb) => verb is ControlVerb.Snapshot or ControlVerb.Quarantine ? SnapshotTimeout : Timeout;

    /// <summary>One frame of at most <see cref="MaxFrameBytes"/>; null when the peer closed before a frame started.</summary>
    public static Task<T?> ReadAsync<T>(Stream stream, JsonTypeInfo<T> info, CancellationToken ct) where T : class =>
        Frame.ReadAsync(stream, info, ct, MaxFrameBytes);

    /// <summary>Writes one frame; a value over <see cref="MaxFrameBytes"/> is a <see cref="ProtocolException"/>.</summary>
    public static Task WriteAsync<T>(Stream stream, T value, JsonTypeInfo<T> info, CancellationToken ct) =>
        Frame.WriteAsync(stream, value, info, ct, MaxFrameBytes);
}

/// <summary>Client of a supervisor's control socket.</summary>
internal static class ControlClient
{
    public static async Task<ControlResponse> SendAsync(string socketPath, ControlRequest request, CancellationToken ct)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(ControlChannel.TimeoutOf(request.Type));
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try { await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), timeout.Token).ConfigureAwait(false); }
        catch (SocketException e)
        {
            socket.Dispose();
            throw MicroagentException.Transient($"the supervisor does not answer on {socketPath}: {e.Message}", null, e);
        }
        await using var stream = new NetworkStream(socket, ownsSocket: true);
        try
        {
            await ControlChannel.WriteAsync(stream, request, ControlJson.Default.ControlRequest, timeout.Token).ConfigureAwait(false);
            return await ControlChannel.ReadAsync(stream, ControlJson.Default.ControlResponse, timeout.Token).ConfigureAwait(false)
                ?? throw MicroagentException.Transient("the supervisor closed the control connection without answering");
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            throw MicroagentException.Transient($"the supervisor did not answer on {socketPath} within {ControlChannel.TimeoutOf(request.Type).TotalSeconds:0} s");
        }
        catch (ProtocolException e)
        {
            throw MicroagentException.Transient($"the supervisor sent a malformed control response: {e.Message}", null, e);
        }
    }
}

/// <summary>What the control server asks of the supervisor. Called concurrently from connection tasks.</summary>
internal interface IControlHandler
{
    /// <summary>Queues a halt or kill; the supervise loop acts on it.</summary>
    void RequestStop(ControlRequest request);

    /// <summary>Queues a pause, resume, snapshot or quarantine for the supervise loop and waits for its answer.</summary>
    Task<ControlResponse> FreezeAsync(ControlRequest request, CancellationToken ct);

    /// <summary>The mediation channel's readiness (severed first when <paramref name="sever"/>); null when this boot has none.</summary>
    Task<MediationReadiness?> MediationAsync(bool sever, CancellationToken ct);

    /// <summary>The network of this boot (severed first when <paramref name="sever"/>), with the guest's counters when it answers.</summary>
    Task<NetworkStatus> NetworkStateAsync(bool sever, CancellationToken ct);

    /// <summary>The supervisor's share of a stats sample.</summary>
    Task<SupervisorStats> StatsAsync(CancellationToken ct);
    /// <summary>The console sessions of this boot (all closed, and new ones refused until the next start, first when <paramref name="sever"/>).</summary>
    ConsoleStatus Console(bool sever);


    /// <summary>Fills the fields every response carries: state, active connections, last activity.</summary>
    void Describe(ControlResponse response);
}

/// <summary>
/// Serves <c>control.sock</c>: an accept loop, one task per connection, dispatch by <see cref="ControlVerb"/>.
/// Invariants: the socket file is 0600 from before the first accept; each connection is bounded by
/// <see cref="ControlChannel.Timeout"/> and <see cref="ControlChannel.MaxFrameBytes"/>; a malformed request is dropped
/// without an answer; after <see cref="DisposeAsync"/> nothing accepts and the socket file is gone.
/// </summary>
internal sealed class ControlServer : IAsyncDisposable
{
    private readonly Socket _listener;
    private readonly IControlHandler _handler;
    private readonly string _path;
    private readonly Task _accept;

    private ControlServer(string path, Socket listener, IControlHandler handler)
    {
        _path = path;
        _listener = listener;
        _handler = handler;
        _accept = Task.Run(AcceptLoopAsync);
    }

    /// <summary>Binds <paramref name="path"/> (replacing a stale file) and starts accepting.</summary>
    public static ControlServer Start(string path, IControlHandler handler)
    {
        File.Delete(path);
        var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            s.Bind(new UnixDomainSocketEndPoint(path));
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            s.Listen(32);
        }
        catch
        {
            s.Dispose();
            throw;
        }
        return new ControlServer(path, s, handler);
    }

    /// <summary>The answer to <paramref name="request"/> (without the fields of <see cref="IControlHandler.Describe"/>).</summary>
    public static async Task<ControlResponse> DispatchAsync(IControlHandler handler, ControlRequest request, CancellationToken ct)
    {
        switch (request.Type)
        {
            case ControlVerb.Halt or ControlVerb.Kill:
                handler.RequestStop(request);
                return new ControlResponse { Ok = true };
            case ControlVerb.Pause or ControlVerb.Resume or ControlVerb.Snapshot or ControlVerb.Quarantine:
                return await handler.FreezeAsync(request, ct).ConfigureAwait(false);
            case ControlVerb.MediationStatus or ControlVerb.SeverMediation:
                var readiness = await handler.MediationAsync(request.Type == ControlVerb.SeverMediation, ct).ConfigureAwait(false);
                return readiness is null
                    ? new ControlResponse { Ok = false, Error = "this boot has no mediation channel" }
                    : new ControlResponse { Ok = true, Mediation = readiness };
            case ControlVerb.NetworkStatus or ControlVerb.SeverNetwork:
                return new ControlResponse { Ok = true, Network = await handler.NetworkStateAsync(request.Type == ControlVerb.SeverNetwork, ct).ConfigureAwait(false) };
            case ControlVerb.Stats:
                return new ControlResponse { Ok = true, Stats = await handler.StatsAsync(ct).ConfigureAwait(false) };
            case ControlVerb.ConsoleStatus or ControlVerb.SeverConsole:
                return new ControlResponse { Ok = true, Console = handler.Console(request.Type == ControlVerb.SeverConsole) };
            default:
                return new ControlResponse { Ok = false, Error = "unknown control request" }; // the name as sent is not kept
        }
    }

    private async Task AcceptLoopAsync()
    {
        while (true)
        {
            Socket c;
            try { c = await _listener.AcceptAsync().ConfigureAwait(false); }
            catch (Exception e) when (e is SocketException or ObjectDisposedException) { return; }
            _ = Task.Run(() => ServeAsync(c));
        }
    }

    private async Task ServeAsync(Socket connection)
    {
        await using var stream = new NetworkStream(connection, ownsSocket: true);
        try
        {
            using var timeout = new CancellationTokenSource(ControlChannel.Timeout);
            var request = await ControlChannel.ReadAsync(stream, ControlJson.Default.ControlRequest, timeout.Token).ConfigureAwait(false);
            if (request is null) return;
            timeout.CancelAfter(ControlChannel.TimeoutOf(request.Type));
            var response = await DispatchAsync(_handler, request, timeout.Token).ConfigureAwait(false);
            _handler.Describe(response);
            await ControlChannel.WriteAsync(stream, response, ControlJson.Default.ControlResponse, timeout.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ProtocolException or MicroagentException) { }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        _listener.Dispose();
        try { await _accept.ConfigureAwait(false); } catch (Exception e) when (e is SocketException or ObjectDisposedException) { }
        try { File.Delete(_path); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}

using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Microagent.Networking;
using Microagent.Protocol;
using Microagent.Workspaces;

namespace Microagent.Models;

/// <summary>The registry-backed <see cref="IModelEndpointSource"/>: the runner's record is read again for every connection, so a restarted runner (another port) is found.</summary>
internal sealed class RegistryEndpointSource(ModelRunnerRegistry registry, string runnerId) : IModelEndpointSource
{
    /// <inheritdoc/>
    public ValueTask<ModelEndpoint?> ResolveAsync(CancellationToken ct) =>
        ValueTask.FromResult(registry.Resolve(runnerId) is { } r ? new ModelEndpoint(r.Host, r.Port, r.Id, r.ServedModel) : null);
}

/// <summary>
/// The host end of the model forward (docs/ARCHITECTURE.md "Model runner"): the supervisor listens on <c>vsock.sock_1028</c>
/// (<see cref="ModelInfo.HostPort"/>, 0600); each guest connection is resolved to the runner now and, with mediation off,
/// relayed as raw bytes (<see cref="ByteRelay"/>); otherwise the mediator serves it. A connection with no runner is closed.
/// </summary>
internal sealed class ModelForwardHost : IAsyncDisposable
{
    private readonly Socket _listener;
    private readonly string _path;
    private readonly IModelEndpointSource _source;
    private readonly IModelMediator? _mediator;
    private readonly Action _onActivity;
    private readonly Action<string> _log;
    private readonly CancellationTokenSource _cts = new();
    private readonly RelaySet _relays = new();
    private readonly ConcurrentDictionary<Socket, byte> _mediated = new();
    private readonly Task _loop;
    private int _severed;

    private ModelForwardHost(string hybridSocketPath, IModelEndpointSource source, IModelMediator? mediator, Action onActivity, Action<string> log)
    {
        _source = source;
        _mediator = mediator;
        _onActivity = onActivity;
        _log = log;
        _path = WorkspaceLayout.GuestListenerOf(hybridSocketPath, ModelInfo.HostPort);
        File.Delete(_path);
        _listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        _listener.Bind(new UnixDomainSocketEndPoint(_path));
        File.SetUnixFileMode(_path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        _listener.Listen(128);
        _loop = Task.Run(AcceptLoopAsync);
    }

    /// <summary>Starts the forward of <paramref name="attachment"/> for workspace <paramref name="store"/>.</summary>
    public static ModelForwardHost Start(WorkspaceStore store, ModelAttachment attachment, Action onActivity, Action<string> log)
    {
        var source = new RegistryEndpointSource(new ModelRunnerRegistry(store.Paths), attachment.RunnerId);
        var mediator = attachment.Mediation.Mode == ModelMediationMode.Off ? null
            : ModelMediators.Create(attachment.Mediation, store.Name, store.Layout.ModelAudit, log);
        log($"model forward: guest 127.0.0.1:{ModelInfo.GuestPort} -> runner {attachment.RunnerId} ({attachment.Ref}), mediation {attachment.Mediation.Mode}");
        return new ModelForwardHost(store.HybridSocketPath, source, mediator, onActivity, log);
    }

    private async Task AcceptLoopAsync()
    {
        while (!_cts.IsCancellationRequested)
        {
            Socket s;
            try { s = await _listener.AcceptAsync(_cts.Token).ConfigureAwait(false); }
            catch (Exception) { return; }
            if (Volatile.Read(ref _severed) != 0) { ByteRelay.Close(s); return; }
            _onActivity();
            _ = Task.Run(() => ServeAsync(s));
        }
    }

    private async Task ServeAsync(Socket guest)
    {
        try
        {
            if (_mediator is not null)
            {
                _mediated[guest] = 0;
                if (Volatile.Read(ref _severed) != 0) { ByteRelay.Close(guest); return; }
                await using var stream = new NetworkStream(guest, ownsSocket: true);
                await _mediator.ServeAsync(stream, _source, _cts.Token).ConfigureAwait(false);
                return;
            }
            var endpoint = await _source.ResolveAsync(_cts.Token).ConfigureAwait(false);
            if (endpoint is null)
            {
                _log("model forward: no runner is running (stopped with `model stop`?); connection closed");
                ByteRelay.Close(guest);
                return;
            }
            var tcp = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_cts.Token);
                timeout.CancelAfter(TimeSpan.FromSeconds(10));
                await tcp.ConnectAsync(new IPEndPoint(IPAddress.Parse(endpoint.Host), endpoint.Port), timeout.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is SocketException or OperationCanceledException)
            {
                _log($"model forward: runner {endpoint.RunnerId} at {endpoint.Host}:{endpoint.Port} refused: {e.Message}");
                ByteRelay.Close(tcp, guest);
                return;
            }
            await _relays.RunAsync(new ByteRelay(guest, tcp, (_, _) => true)).ConfigureAwait(false);
            ByteRelay.Close(tcp, guest);
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or OperationCanceledException)
        {
            ByteRelay.Close(guest);
        }
        finally { _mediated.TryRemove(guest, out _); }
    }

    /// <summary>Guest connections open now (relayed or mediated).</summary>
    public int ActiveConnections => _relays.Count + _mediated.Count;

    /// <summary>
    /// Quarantine's <c>sever-model</c> (docs/ARCHITECTURE.md "Quarantine"): the host listener is closed and its socket removed (new
    /// guest connections are refused), every relay is aborted and every mediated connection closed. Idempotent; returns what it did.
    /// </summary>
    public string Sever()
    {
        int open = ActiveConnections;
        if (Interlocked.Exchange(ref _severed, 1) == 0)
        {
            _cts.Cancel();
            _listener.Dispose();
            try { File.Delete(_path); } catch (IOException) { }
        }
        _relays.AbortAll("severed by quarantine");
        foreach (var s in _mediated.Keys) ByteRelay.Close(s);
        _log($"model forward severed by quarantine ({open} open connection{(open == 1 ? "" : "s")} closed)");
        return $"model forward closed: new guest connections refused, {open} open connection{(open == 1 ? "" : "s")} closed";
    }

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        await _cts.CancelAsync().ConfigureAwait(false);
        _listener.Dispose();
        try { File.Delete(_path); } catch (IOException) { }
        _relays.AbortAll("stopped");
        try { await _loop.ConfigureAwait(false); } catch (Exception) { }
        if (_mediator is not null) await _mediator.DisposeAsync().ConfigureAwait(false);
    }
}

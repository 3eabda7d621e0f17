using System.Buffers;
using System.Collections.Concurrent;
using System.Net.Sockets;

namespace Microagent.Workspaces;

/// <summary>
/// Relays guest→host vsock connections to a host TCP endpoint (<c>--vsock PORT=HOST:PORT</c> and the mediation channel):
/// the backend delivers a guest connection to CID 2 port PORT at the unix listener <c>&lt;hybrid&gt;_PORT</c>; each one gets
/// its own TCP connection to HOST:PORT, and bytes flow both ways unchanged, with half-close.
/// Invariants: a TCP connect that fails (after <see cref="ConnectWait"/> of retries for a fail-open channel) closes the guest
/// side at once; a reset on either side ends both directions; at most one pooled buffer per direction, rented only while a
/// chunk is in flight (an idle relay waits with a zero-byte receive and holds none), and a read is only issued after
/// the previous chunk was fully sent, so a slow reader throttles the writer (vsock credit on the guest side, TCP window on the
/// host side) and host memory stays bounded; how many relays exist at once is bounded by the vsock device's guest
/// connection cap (<see cref="GuestConnectionCap"/>); after <see cref="Sever"/> no byte crosses and new guest connections are refused
/// (the unix listener is gone, so the backend resets them).
/// </summary>
internal sealed class VsockTcpProxy : IAsyncDisposable
{
    private const int BufferSize = 64 * 1024;
    private readonly Socket _listener;
    private readonly VsockMapping _mapping;
    private readonly Action _onActivity;
    private readonly Action<string> _log;
    private readonly CancellationTokenSource _cts = new();
    private readonly string _path;
    private readonly Task _accept;
    private readonly ConcurrentDictionary<long, (Socket Guest, Socket Tcp)> _relays = new();
    private long _total;
    private int _severed;

    public VsockTcpProxy(string hybridSocketPath, VsockMapping mapping, Action onActivity, Action<string> log, TimeSpan? connectWait = null, string label = "vsock")
    {
        _mapping = mapping;
        _onActivity = onActivity;
        _log = log;
        Label = label;
        ConnectWait = connectWait ?? TimeSpan.Zero;
        _path = WorkspaceLayout.GuestListenerOf(hybridSocketPath, mapping.GuestPort);
        File.Delete(_path);
        _listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        _listener.Bind(new UnixDomainSocketEndPoint(_path));
        File.SetUnixFileMode(_path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        _listener.Listen(128);
        _accept = Task.Run(AcceptLoop);
    }

    /// <summary>Name in log lines.</summary>
    public string Label { get; }

    /// <summary>Zero: one connect attempt (fail-closed). Otherwise: retry the target this long before closing the guest side.</summary>
    public TimeSpan ConnectWait { get; }

    /// <summary>The mapping relayed.</summary>
    public VsockMapping Mapping => _mapping;

    /// <summary>Guest connections being relayed now.</summary>
    public int ActiveConnections => _relays.Count;

    /// <summary>Guest connections accepted so far.</summary>
    public long TotalConnections => Interlocked.Read(ref _total);

    /// <summary>The channel was severed.</summary>
    public bool IsSevered => Volatile.Read(ref _severed) != 0;

    /// <summary>Severs the channel: stops accepting (new guest connections are refused), aborts every relay; no byte crosses afterwards.</summary>
    public void Sever()
    {
        if (Interlocked.Exchange(ref _severed, 1) != 0) return;
        _cts.Cancel();
        _listener.Dispose();
        try { File.Delete(_path); } catch (IOException) { }
        foreach (var (id, pair) in _relays)
        {
            Abort(pair.Guest, pair.Tcp);
            _relays.TryRemove(id, out _);
        }
        _log($"{Label} {_mapping}: severed");
    }

    private async Task AcceptLoop()
    {
        while (!_cts.IsCancellationRequested)
        {
            Socket guest;
            try { guest = await _listener.AcceptAsync(_cts.Token).ConfigureAwait(false); }
            catch (Exception) { return; }
            if (IsSevered) { guest.Dispose(); return; }
            _onActivity();
            long id = Interlocked.Increment(ref _total);
            _ = Task.Run(() => RelayAsync(id, guest));
        }
    }

    private async Task RelayAsync(long id, Socket guest)
    {
        using (guest)
        {
            using var tcp = await ConnectAsync().ConfigureAwait(false);
            if (tcp is null) return;
            _relays[id] = (guest, tcp);
            try
            {
                if (IsSevered) { Abort(guest, tcp); return; }
                await Task.WhenAll(PumpAsync(guest, tcp), PumpAsync(tcp, guest)).ConfigureAwait(false);
            }
            finally { _relays.TryRemove(id, out _); }
        }
    }

    /// <summary>A connected TCP socket, or null (logged) when the target cannot be reached in time.</summary>
    private async Task<Socket?> ConnectAsync()
    {
        var deadline = DateTime.UtcNow + ConnectWait;
        for (int attempt = 0; ; attempt++)
        {
            var tcp = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_cts.Token);
                timeout.CancelAfter(TimeSpan.FromSeconds(5));
                await tcp.ConnectAsync(_mapping.Host, _mapping.HostPort, timeout.Token).ConfigureAwait(false);
                return tcp;
            }
            catch (Exception e)
            {
                tcp.Dispose();
                if (!_cts.IsCancellationRequested && DateTime.UtcNow < deadline)
                {
                    if (attempt == 0)
                        _log($"{Label} {_mapping}: {_mapping.Host}:{_mapping.HostPort} is not reachable yet ({e.Message}); retrying for up to {ConnectWait.TotalSeconds:0} s");
                    try { await Task.Delay(250, _cts.Token).ConfigureAwait(false); } catch (OperationCanceledException) { }
                    continue;
                }
                _log($"{Label} {_mapping}: cannot connect to {_mapping.Host}:{_mapping.HostPort}: {e.Message}; the guest connection is closed");
                return null;
            }
        }
    }

    /// <summary>Copies until end of stream, then half-closes the destination for writing. A reset aborts both sockets.</summary>
    private async Task PumpAsync(Socket from, Socket to)
    {
        try
        {
            while (true)
            {
                await from.ReceiveAsync(Memory<byte>.Empty, SocketFlags.None, _cts.Token).ConfigureAwait(false);
                byte[] buffer = ArrayPool<byte>.Shared.Rent(BufferSize);
                try
                {
                    int n = await from.ReceiveAsync(buffer.AsMemory(0, BufferSize), SocketFlags.None, _cts.Token).ConfigureAwait(false);
                    if (n == 0) break;
                    if (IsSevered) throw new OperationCanceledException();
                    _onActivity();
                    int sent = 0;
                    while (sent < n) sent += await to.SendAsync(buffer.AsMemory(sent, n - sent), SocketFlags.None, _cts.Token).ConfigureAwait(false);
                }
                finally { ArrayPool<byte>.Shared.Return(buffer); }
            }
            to.Shutdown(SocketShutdown.Send);
        }
        catch (Exception)
        {
            if (to.ProtocolType == ProtocolType.Tcp) Abort(from, to);
            else Abort(to, from);
        }
    }

    /// <summary>Ends both sides: the TCP side with a reset (linger 0), the guest side closed (the backend resets the guest's socket).</summary>
    private static void Abort(Socket guest, Socket tcp)
    {
        try { tcp.LingerState = new LingerOption(true, 0); } catch (Exception) { }
        try { tcp.Close(); } catch (Exception) { }
        try { guest.Shutdown(SocketShutdown.Both); } catch (Exception) { }
        try { guest.Close(); } catch (Exception) { }
    }

    public async ValueTask DisposeAsync()
    {
        await _cts.CancelAsync().ConfigureAwait(false);
        _listener.Dispose();
        try { await _accept.ConfigureAwait(false); } catch (Exception) { }
        foreach (var pair in _relays.Values) Abort(pair.Guest, pair.Tcp);
        try { File.Delete(_path); } catch (IOException) { }
    }
}

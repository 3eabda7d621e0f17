using System.Collections.Concurrent;
using System.Net.Sockets;
using System.Threading.Channels;

namespace Microagent.Vsock;

/// <summary>
/// The host (unix socket) side of hybrid vsock, in the manner of Firecracker's
/// <c>src/vmm/src/devices/virtio/vsock/unix/muxer.rs</c> (docs/ARCHITECTURE.md "Vsock"): one type owns
/// <list type="bullet">
/// <item>the listener on <see cref="SocketPath"/> (<c>&lt;ws&gt;/vsock.sock</c>), where a host client writes
/// <c>CONNECT &lt;port&gt;\n</c> and, once the guest accepts, reads <c>OK &lt;hostport&gt;\n</c> (<see cref="HybridVsock"/>);</item>
/// <item>guest-initiated connections to CID 2 port P, connected to the host application's listener at
/// <see cref="ListenerPath"/> (<c>&lt;ws&gt;/vsock.sock_&lt;P&gt;</c>); no listener there refuses the connection (OP_RST);</item>
/// <item>every unix socket of a live connection (<see cref="UnixHostSide"/>), closed on <see cref="Dispose"/>.</item>
/// </list>
/// It never touches the device directly: results are posted to the device loop. It outlives vhost-user sessions, so a
/// new session can attach to the same muxer.
/// </summary>
internal sealed class HybridMuxer : IHostConnector, IDisposable
{
    /// <summary>How long a host client has to send its <c>CONNECT</c> line.</summary>
    public static readonly TimeSpan HandshakeTimeout = TimeSpan.FromSeconds(10);
    /// <summary>How long a connect to <c>&lt;ws&gt;/vsock.sock_&lt;P&gt;</c> may take before the guest gets OP_RST.</summary>
    public static readonly TimeSpan HostConnectTimeout = TimeSpan.FromSeconds(5);
    /// <summary>Pending host clients the listener queues.</summary>
    public const int Backlog = 128;

    private readonly Func<Action<VsockDevice>, ValueTask> _post;
    private readonly Action<string> _log;
    private readonly CancellationTokenSource _stop = new();
    // Each live unix socket, with the guest port of a host-initiated connection (GuestInitiated for the other direction).
    private readonly ConcurrentDictionary<UnixHostSide, uint> _sides = new();
    private readonly ConcurrentDictionary<uint, byte> _severedPorts = new();
    private const uint GuestInitiated = uint.MaxValue;
    private Socket? _listener;
    private long _opened;
    private int _disposed;

    /// <summary>Creates the muxer for <paramref name="socketPath"/>; <paramref name="post"/> runs an action on the device loop.</summary>
    public HybridMuxer(string socketPath, Func<Action<VsockDevice>, ValueTask> post, Action<string> log)
    {
        SocketPath = socketPath;
        _post = post;
        _log = log;
    }

    /// <summary>The hybrid socket host clients connect to.</summary>
    public string SocketPath { get; }

    /// <summary>Connections opened so far, either direction (counted when the handshake or the guest's request arrives).</summary>
    public long ConnectionsOpened => Interlocked.Read(ref _opened);

    /// <summary>Unix sockets of connections not closed yet (including handshakes waiting for the device).</summary>
    public int OpenSockets => _sides.Count;

    /// <summary>Where the host application listens for guest connections to host port <paramref name="port"/>.</summary>
    public string ListenerPath(uint port) => $"{SocketPath}_{port}";

    /// <summary>Host-initiated connections to guest port <paramref name="port"/> open now (handshakes waiting for the guest included).</summary>
    public int OpenToGuestPort(uint port) => _sides.Count(kv => kv.Value == port);

    /// <summary>Whether <see cref="SeverGuestPort"/> closed guest port <paramref name="port"/> to host clients.</summary>
    public bool IsSevered(uint port) => _severedPorts.ContainsKey(port);

    /// <summary>
    /// Severs guest port <paramref name="port"/> for host clients: every host-initiated connection to it is closed at once
    /// (the guest sees a reset) and every later <c>CONNECT</c> to it is closed unanswered, for as long as this muxer lives
    /// (one boot; docs/ARCHITECTURE.md "Console"). Returns how many connections it closed.
    /// </summary>
    public int SeverGuestPort(uint port)
    {
        _severedPorts[port] = 0;
        int closed = 0;
        foreach (var (side, p) in _sides)
        {
            if (p != port) continue;
            side.Sever();
            closed++;
        }
        return closed;
    }

    /// <summary>Binds <see cref="SocketPath"/> (mode 0600) and listens. Throws on failure (an existing file included) and leaves nothing bound.</summary>
    public void Listen()
    {
        var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            listener.Bind(new UnixDomainSocketEndPoint(SocketPath));
            File.SetUnixFileMode(SocketPath, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            listener.Listen(Backlog);
        }
        catch
        {
            listener.Dispose();
            throw;
        }
        _listener = listener;
    }

    /// <summary>Starts accepting host clients (after <see cref="Listen"/>).</summary>
    public void Start() => _ = Task.Run(AcceptLoop);

    /// <summary>Stops accepting; open connections stay up. The socket file stays until <see cref="Dispose"/>.</summary>
    public void CloseListener() => _listener?.Dispose();

    /// <summary>Stops accepting, closes every unix socket it still holds and unlinks <see cref="SocketPath"/> if it bound it.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        _stop.Cancel();
        CloseListener();
        foreach (var side in _sides.Keys) side.Abort();
        if (_listener is not null)
        {
            try { File.Delete(SocketPath); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }

    private UnixHostSide Track(Socket socket, uint guestPort)
    {
        var side = new UnixHostSide(socket, _post, s => _sides.TryRemove(s, out _));
        _sides[side] = guestPort;
        if (Volatile.Read(ref _disposed) != 0) side.Abort(); // raced with Dispose: never leave a socket behind
        else if (guestPort != GuestInitiated && _severedPorts.ContainsKey(guestPort)) side.Abort(); // raced with a sever
        return side;
    }

    // ---- host → guest: CONNECT <port> ------------------------------------------------------------------

    private async Task AcceptLoop()
    {
        var listener = _listener!;
        while (!_stop.IsCancellationRequested)
        {
            Socket client;
            try { client = await listener.AcceptAsync(_stop.Token).ConfigureAwait(false); }
            catch (Exception) when (_stop.IsCancellationRequested) { return; }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                if (!_stop.IsCancellationRequested && e is not ObjectDisposedException) _log($"vsock: hybrid listener failed: {e.Message}");
                return;
            }
            _ = Task.Run(() => HandshakeAsync(client));
        }
    }

    /// <summary>Reads the client's <c>CONNECT &lt;port&gt;\n</c>; a malformed, over-long, missing or late line closes the client unanswered.</summary>
    private async Task HandshakeAsync(Socket client)
    {
        string? line;
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
            timeout.CancelAfter(HandshakeTimeout);
            line = await HybridVsock.ReadLineAsync(client, timeout.Token).ConfigureAwait(false);
        }
        catch (Exception) { client.Dispose(); return; }
        if (line is null || !HybridVsock.TryParseConnect(line, out uint port))
        {
            _log("vsock: hybrid client sent a bad handshake line");
            client.Dispose();
            return;
        }
        if (_severedPorts.ContainsKey(port))
        {
            _log($"vsock: refused a host connection to severed guest port {port}");
            client.Dispose();
            return;
        }
        Interlocked.Increment(ref _opened);
        var side = Track(client, port);
        try
        {
            await _post(d =>
            {
                var c = d.ConnectFromHost(port, side);
                if (c is null) { _log("vsock: connection table full; hybrid client refused"); side.Abort(); }
                else side.Attach(c);
            }).ConfigureAwait(false);
        }
        catch (ChannelClosedException) { side.Abort(); }
    }

    // ---- guest → host: connect <ws>/vsock.sock_<P> -----------------------------------------------------

    /// <inheritdoc />
    public void Connect(VsockConnection connection, uint port)
    {
        Interlocked.Increment(ref _opened);
        _ = Task.Run(() => ConnectAsync(connection, ListenerPath(port)));
    }

    private async Task ConnectAsync(VsockConnection connection, string path)
    {
        Socket? s = new(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
            timeout.CancelAfter(HostConnectTimeout);
            await s.ConnectAsync(new UnixDomainSocketEndPoint(path), timeout.Token).ConfigureAwait(false);
        }
        catch (Exception)
        {
            s.Dispose();
            s = null;
        }
        var side = s is null ? null : Track(s, GuestInitiated);
        try
        {
            await _post(d =>
            {
                side?.Attach(connection);
                d.OnHostConnected(connection, side);
            }).ConfigureAwait(false);
        }
        catch (ChannelClosedException) { side?.Abort(); }
    }
}

using System.Net;
using System.Net.Sockets;
using Microagent.Errors;
using Microagent.Protocol;

namespace Microagent.Networking;

/// <summary>
/// Published ports (docs/ARCHITECTURE.md "Networking"): one host TCP listener per <see cref="PublishedPort"/>, bound when the
/// supervisor starts (a port in use fails the boot with the port named); each accepted connection becomes a host→guest vsock
/// connection to the agent port carrying <c>Request{type:"forward", forwardPort}</c> (<c>AgentClient.ForwardAsync</c>); after the
/// agent's <c>ok</c> bytes flow both ways (<see cref="ByteRelay"/>). Listeners close on halt, kill and <see cref="Sever"/>.
/// </summary>
internal sealed class PortPublisher : IAsyncDisposable
{
    private readonly Func<int, CancellationToken, Task<Stream>> _forward;
    private readonly Action _onActivity;
    private readonly Action<string> _log;
    private readonly CancellationTokenSource _cts = new();
    private readonly List<(Socket Listener, PublishedPort Port)> _listeners = [];
    private readonly List<Task> _loops = [];
    private readonly RelaySet _relays = new();
    private int _severed;
    private long _bytesIn, _bytesOut;

    private PortPublisher(Func<int, CancellationToken, Task<Stream>> forward, Action onActivity, Action<string> log)
    {
        _forward = forward;
        _onActivity = onActivity;
        _log = log;
    }

    /// <summary>
    /// Binds every port (all or none: a failure closes those bound and throws <c>conflict</c> naming the port);
    /// <paramref name="forward"/> opens a relayed connection to a guest port (the agent's <c>forward</c>).
    /// </summary>
    public static PortPublisher Start(IReadOnlyList<PublishedPort> ports, Func<int, CancellationToken, Task<Stream>> forward, Action onActivity, Action<string> log)
    {
        var p = new PortPublisher(forward, onActivity, log);
        try
        {
            foreach (var port in ports)
            {
                var ip = IPAddress.Parse(port.HostAddress);
                var l = new Socket(ip.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
                try { l.Bind(new IPEndPoint(ip, port.HostPort)); }
                catch (SocketException e)
                {
                    l.Dispose();
                    throw new MicroagentException(ErrorKind.Conflict, $"cannot publish {port}: {port.HostAddress}:{port.HostPort}: {e.SocketErrorCode}",
                        "pick another host port (-p HOSTPORT:GUESTPORT), or stop what listens there");
                }
                l.Listen(128);
                p._listeners.Add((l, port));
                p._loops.Add(Task.Run(() => p.AcceptLoop(l, port)));
                log($"published {port}");
            }
            return p;
        }
        catch
        {
            p.Sever();
            throw;
        }
    }

    /// <summary>The ports listened on (empty once severed).</summary>
    public IReadOnlyList<PublishedPort> Ports => IsSevered ? [] : [.. _listeners.Select(l => l.Port)];

    /// <summary>Connections being relayed now.</summary>
    public int ActiveConnections => _relays.Count;

    /// <summary>Host client → guest bytes relayed so far (docs/ARCHITECTURE.md "Stats").</summary>
    public long BytesIn => Interlocked.Read(ref _bytesIn);

    /// <summary>Guest → host client bytes relayed so far.</summary>
    public long BytesOut => Interlocked.Read(ref _bytesOut);

    /// <summary>True once severed.</summary>
    public bool IsSevered => Volatile.Read(ref _severed) != 0;

    private async Task AcceptLoop(Socket listener, PublishedPort port)
    {
        while (!_cts.IsCancellationRequested)
        {
            Socket client;
            try { client = await listener.AcceptAsync(_cts.Token).ConfigureAwait(false); }
            catch (Exception) { return; }
            if (IsSevered) { ByteRelay.Close(client); return; }
            _onActivity();
            _ = Task.Run(() => ForwardAsync(client, port));
        }
    }

    private async Task ForwardAsync(Socket client, PublishedPort port)
    {
        using (client)
        {
            Stream? guest = null;
            try
            {
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_cts.Token);
                timeout.CancelAfter(TimeSpan.FromSeconds(10));
                guest = await _forward(port.GuestPort, timeout.Token).ConfigureAwait(false);
                if (guest is not NetworkStream { Socket: var guestSocket })
                    throw new InvalidOperationException("the hybrid vsock stream is not a socket stream");
                var relay = new ByteRelay(guestSocket, client, Count);
                await _relays.RunAsync(relay).ConfigureAwait(false);
            }
            catch (Exception e) when (e is MicroagentException or ProtocolException or IOException or SocketException or OperationCanceledException)
            {
                _log($"published {port}: {e.Message}");
                ByteRelay.Close(client);
            }
            finally
            {
                if (guest is not null) await guest.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    /// <summary>The relay's admission of a chunk: refused once severed, else counted (a→b is guest → host client).</summary>
    private bool Count(int bytes, bool fromGuest)
    {
        if (IsSevered) return false;
        Interlocked.Add(ref fromGuest ? ref _bytesOut : ref _bytesIn, bytes);
        return true;
    }

    /// <summary>Closes every listener and aborts every relayed connection; new connections to the host ports are refused by the kernel.</summary>
    public void Sever()
    {
        if (Interlocked.Exchange(ref _severed, 1) != 0) return;
        _cts.Cancel();
        foreach (var (l, _) in _listeners) l.Dispose();
        _relays.AbortAll("severed");
    }

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        Sever();
        try { await Task.WhenAll(_loops).ConfigureAwait(false); } catch (Exception) { }
    }
}

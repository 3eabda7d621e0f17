using System.Net.Sockets;

namespace Microagent.Workspaces;

/// <summary>
/// Relays guest→host vsock connections to a host TCP endpoint (<c>--vsock PORT=HOST:PORT</c>): the backend delivers a guest
/// connection to CID 2 port PORT at the unix listener <c>&lt;hybrid&gt;_PORT</c>; each one gets a TCP connection to HOST:PORT,
/// and bytes flow both ways with half-close. Invariant: a failed TCP connect closes the guest side at once (the guest sees a reset).
/// </summary>
internal sealed class VsockTcpProxy : IAsyncDisposable
{
    private readonly Socket _listener;
    private readonly VsockMapping _mapping;
    private readonly Action _onActivity;
    private readonly Action<string> _log;
    private readonly CancellationTokenSource _cts = new();
    private readonly string _path;
    private readonly Task _accept;

    public VsockTcpProxy(string hybridSocketPath, VsockMapping mapping, Action onActivity, Action<string> log)
    {
        _mapping = mapping;
        _onActivity = onActivity;
        _log = log;
        _path = $"{hybridSocketPath}_{mapping.GuestPort}";
        File.Delete(_path);
        _listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        _listener.Bind(new UnixDomainSocketEndPoint(_path));
        File.SetUnixFileMode(_path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        _listener.Listen(64);
        _accept = Task.Run(AcceptLoop);
    }

    private async Task AcceptLoop()
    {
        while (!_cts.IsCancellationRequested)
        {
            Socket guest;
            try { guest = await _listener.AcceptAsync(_cts.Token).ConfigureAwait(false); }
            catch (Exception) { return; }
            _onActivity();
            _ = Task.Run(() => RelayAsync(guest));
        }
    }

    private async Task RelayAsync(Socket guest)
    {
        using (guest)
        {
            using var tcp = new Socket(SocketType.Stream, ProtocolType.Tcp);
            try
            {
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_cts.Token);
                timeout.CancelAfter(TimeSpan.FromSeconds(10));
                await tcp.ConnectAsync(_mapping.Host, _mapping.HostPort, timeout.Token).ConfigureAwait(false);
            }
            catch (Exception e)
            {
                _log($"vsock {_mapping}: cannot connect to {_mapping.Host}:{_mapping.HostPort}: {e.Message}");
                return;
            }
            await Task.WhenAll(PumpAsync(guest, tcp), PumpAsync(tcp, guest)).ConfigureAwait(false);
        }
    }

    /// <summary>Copies until end of stream, then half-closes the destination for writing.</summary>
    private async Task PumpAsync(Socket from, Socket to)
    {
        var buffer = new byte[64 * 1024];
        try
        {
            while (true)
            {
                int n = await from.ReceiveAsync(buffer, SocketFlags.None, _cts.Token).ConfigureAwait(false);
                if (n == 0) break;
                _onActivity();
                int sent = 0;
                while (sent < n) sent += await to.SendAsync(buffer.AsMemory(sent, n - sent), SocketFlags.None, _cts.Token).ConfigureAwait(false);
            }
            to.Shutdown(SocketShutdown.Send);
        }
        catch (Exception)
        {
            // A reset on either side ends both directions.
            try { to.Shutdown(SocketShutdown.Both); } catch (Exception) { }
            try { from.Shutdown(SocketShutdown.Both); } catch (Exception) { }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _cts.CancelAsync().ConfigureAwait(false);
        _listener.Dispose();
        try { await _accept.ConfigureAwait(false); } catch (Exception) { }
        File.Delete(_path);
    }
}

using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Microagent.Protocol;
using Microagent.Workspaces;

namespace Microagent.Networking;

/// <summary>Counters of a broker for status.</summary>
/// <param name="Active">Egress connections relayed now.</param>
/// <param name="Allowed">Connections dialled since the broker started.</param>
/// <param name="Refused">Connections refused (policy, caps, dial failures).</param>
/// <param name="DnsQueries">DNS queries answered.</param>
/// <param name="BytesOut">Bytes from the guest out.</param>
/// <param name="BytesIn">Bytes to the guest.</param>
/// <param name="Severed">The network was severed.</param>
public sealed record EgressCounters(int Active, long Allowed, long Refused, long DnsQueries, long BytesOut, long BytesIn, bool Severed);

/// <summary>
/// The per-workspace egress broker (docs/ARCHITECTURE.md "Networking"), the boundary of a <c>user</c> network. Every guest
/// TCP connection arrives as a guest→host vsock connection on <c>vsock.sock_1026</c> (<see cref="NetworkInfo.EgressPort"/>):
/// the broker reads <c>Frame(EgressRequest)</c>, decides with <see cref="EgressPolicy"/> before any dial, dials, answers
/// <c>Frame(EgressVerdict)</c> and relays (<see cref="ByteRelay"/>). DNS queries arrive on <c>vsock.sock_1027</c> and are
/// answered by <see cref="DnsResponder"/>. Caps: at most <see cref="NetworkConfig.MaxConnections"/> open at once and
/// <see cref="NetworkConfig.MaxTotalBytes"/> in all (the connection that crosses it is torn down; later ones are refused).
/// Every decision is audited. <see cref="Sever"/> closes everything and refuses from then on.
/// </summary>
internal sealed class EgressBroker : IAsyncDisposable
{
    /// <summary>How long a guest may take to send its request frame.</summary>
    public static readonly TimeSpan RequestTimeout = TimeSpan.FromSeconds(10);
    /// <summary>How long a dial may take.</summary>
    public static readonly TimeSpan DialTimeout = TimeSpan.FromSeconds(10);
    private const int MaxRequestFrameBytes = 4096;
    private const int MaxDnsInFlight = 64;

    private readonly EgressPolicy _policy;
    private readonly EgressAudit _audit;
    private readonly DnsResponder _dns;
    private readonly Action _onActivity;
    private readonly Action<string> _log;
    private readonly CancellationTokenSource _cts = new();
    private readonly RelaySet _relays = new();
    private readonly SemaphoreSlim _dnsSlots = new(MaxDnsInFlight);
    private readonly List<(Socket Listener, string Path)> _listeners = [];
    private readonly List<Task> _loops = [];
    private int _active;
    private long _allowed, _refused, _dnsQueries, _bytesOut, _bytesIn, _dials;
    private int _severed;
    private bool _capReached;

    /// <summary>A broker for the workspace whose hybrid vsock socket is <paramref name="hybridSocketPath"/>; <see cref="Start"/> binds its listeners.</summary>
    public EgressBroker(string hybridSocketPath, EgressPolicy policy, EgressAudit audit, Action onActivity, Action<string> log,
        Func<string, CancellationToken, Task<IPAddress[]>>? resolve = null)
    {
        HybridSocketPath = hybridSocketPath;
        _policy = policy;
        _audit = audit;
        _onActivity = onActivity;
        _log = log;
        _dns = new DnsResponder(policy, resolve, log);
    }

    /// <summary>The hybrid vsock socket the listeners sit beside.</summary>
    public string HybridSocketPath { get; }

    /// <summary>Dials attempted so far (a refused decision never dials).</summary>
    public long DialAttempts => Interlocked.Read(ref _dials);

    /// <summary>True once <see cref="Sever"/> ran.</summary>
    public bool IsSevered => Volatile.Read(ref _severed) != 0;

    /// <summary>Counters for status.</summary>
    public EgressCounters Counters => new(Volatile.Read(ref _active), Interlocked.Read(ref _allowed), Interlocked.Read(ref _refused),
        Interlocked.Read(ref _dnsQueries), Interlocked.Read(ref _bytesOut), Interlocked.Read(ref _bytesIn), IsSevered);

    /// <summary>Binds <c>vsock.sock_1026</c> and <c>vsock.sock_1027</c> (0600) and starts accepting.</summary>
    public EgressBroker Start()
    {
        Listen(NetworkInfo.EgressPort, HandleEgressAsync);
        Listen(NetworkInfo.DnsPort, HandleDnsAsync);
        _log($"egress broker: {_policy.Config}{(_policy.LoopbackOnly ? $"; {LoopbackGuard.Variable}=1: only 127.0.0.0/8 is dialled" : "")}");
        return this;
    }

    private void Listen(uint port, Func<Socket, Task> handle)
    {
        string path = WorkspaceLayout.GuestListenerOf(HybridSocketPath, port);
        File.Delete(path);
        var l = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        l.Bind(new UnixDomainSocketEndPoint(path));
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        l.Listen(256);
        _listeners.Add((l, path));
        _loops.Add(Task.Run(async () =>
        {
            while (!_cts.IsCancellationRequested)
            {
                Socket s;
                try { s = await l.AcceptAsync(_cts.Token).ConfigureAwait(false); }
                catch (Exception) { return; }
                if (IsSevered) { s.Dispose(); return; }
                _onActivity();
                _ = Task.Run(() => handle(s));
            }
        }));
    }

    private async Task HandleEgressAsync(Socket guest)
    {
        var started = Stopwatch.StartNew();
        var time = DateTimeOffset.UtcNow;
        using (guest)
        {
            EgressRequest? req;
            try
            {
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_cts.Token);
                timeout.CancelAfter(RequestTimeout);
                await using var ns = new NetworkStream(guest, ownsSocket: false);
                req = await Frame.ReadAsync(ns, NetworkJson.Default.EgressRequest, timeout.Token, MaxRequestFrameBytes).ConfigureAwait(false);
            }
            catch (Exception e) when (e is ProtocolException or IOException or OperationCanceledException or SocketException or System.Text.Json.JsonException)
            {
                Refuse(time, "bad-request", null, null, null);
                return;
            }
            if (req is null || !IPAddress.TryParse(req.Ip, out var ip) || req.Port is < 1 or > 65535 || req.Proto != "tcp")
            {
                Refuse(time, "bad-request", null, req?.Ip, req?.Port);
                await VerdictAsync(guest, false, "bad request").ConfigureAwait(false);
                return;
            }
            ip = AddressClass.Unwrap(ip);
            if (!TryAdmit(out string? capRule))
            {
                var (real, name) = _policy.Translate(ip);
                Refuse(time, capRule!, name, real.ToString(), req.Port);
                await VerdictAsync(guest, false, capRule!).ConfigureAwait(false);
                return;
            }
            try { await ServeAsync(guest, ip, req.Port, time, started).ConfigureAwait(false); }
            finally { Interlocked.Decrement(ref _active); }
        }
    }

    /// <summary>Takes a connection slot, or says which cap refused it.</summary>
    private bool TryAdmit(out string? rule)
    {
        rule = IsSevered ? "severed" : null;
        if (rule is null && Volatile.Read(ref _capReached)) rule = "max-total-bytes";
        if (rule is not null) return false;
        if (Interlocked.Increment(ref _active) <= _policy.Config.MaxConnections) return true;
        Interlocked.Decrement(ref _active);
        rule = "max-conns";
        return false;
    }

    private async Task ServeAsync(Socket guest, IPAddress asked, int port, DateTimeOffset time, Stopwatch started)
    {
        var decision = _policy.DecideConnect(asked);
        var ip = decision.Target ?? asked; // a stand-in is decided, dialled and audited as its real address
        if (!decision.Allowed)
        {
            if (decision.Rule == "test-guard") _log($"ERROR: {LoopbackGuard.Variable}=1 refused a dial to {ip}:{port} (outside 127.0.0.0/8)");
            Refuse(time, decision.Rule, decision.Name, ip.ToString(), port);
            await VerdictAsync(guest, false, $"policy: {decision.Rule}").ConfigureAwait(false);
            return;
        }
        var (dialled, why) = await DialAsync(ip, port).ConfigureAwait(false);
        using var tcp = dialled;
        if (tcp is null)
        {
            Refuse(time, $"dial: {why}", decision.Name, ip.ToString(), port);
            await VerdictAsync(guest, false, $"dial failed: {why}").ConfigureAwait(false);
            return;
        }
        if (!await VerdictAsync(guest, true, null).ConfigureAwait(false)) { ByteRelay.Close(tcp); return; }
        Interlocked.Increment(ref _allowed);
        var relay = new ByteRelay(guest, tcp, Admit);
        await _relays.RunAsync(relay).ConfigureAwait(false);
        _audit.Write(new EgressRecord
        {
            Time = time, Kind = "connect", Verdict = "allowed", Rule = decision.Rule, Name = decision.Name, Ip = ip.ToString(), Port = port,
            BytesOut = relay.AToB, BytesIn = relay.BToA, DurationMs = started.ElapsedMilliseconds, End = relay.End,
        });
        if (relay.End == "max-total-bytes") _log($"egress: {ip}:{port} torn down: the byte cap ({_policy.Config.MaxTotalBytes} bytes) was reached");
    }

    /// <summary>Counts a chunk against the byte cap; false when it would cross it.</summary>
    private bool Admit(int n, bool outbound)
    {
        if (IsSevered) return false;
        if (_policy.Config.MaxTotalBytes is { } max && Interlocked.Read(ref _bytesOut) + Interlocked.Read(ref _bytesIn) + n > max)
        {
            Volatile.Write(ref _capReached, true);
            return false;
        }
        Interlocked.Add(ref outbound ? ref _bytesOut : ref _bytesIn, n);
        return true;
    }

    /// <summary>Connects to <paramref name="ip"/>:<paramref name="port"/>; the test guard is checked here again, beside the socket call.</summary>
    private async Task<(Socket? Socket, string? Why)> DialAsync(IPAddress ip, int port)
    {
        if (_policy.LoopbackOnly && !LoopbackGuard.IsLoopbackV4(ip))
        {
            _log($"ERROR: {LoopbackGuard.Variable}=1 refused a dial to {ip}:{port}");
            return (null, "test-guard");
        }
        Interlocked.Increment(ref _dials);
        var tcp = new Socket(ip.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_cts.Token);
            timeout.CancelAfter(DialTimeout);
            await tcp.ConnectAsync(new IPEndPoint(ip, port), timeout.Token).ConfigureAwait(false);
            return (tcp, null);
        }
        catch (Exception e)
        {
            tcp.Dispose();
            return (null, e is SocketException se ? se.SocketErrorCode.ToString() : e is OperationCanceledException ? "timeout" : e.Message);
        }
    }

    private async Task<bool> VerdictAsync(Socket guest, bool allowed, string? reason)
    {
        try
        {
            await using var ns = new NetworkStream(guest, ownsSocket: false);
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_cts.Token);
            timeout.CancelAfter(RequestTimeout);
            await Frame.WriteAsync(ns, new EgressVerdict { Allowed = allowed, Reason = reason }, NetworkJson.Default.EgressVerdict, timeout.Token).ConfigureAwait(false);
            return true;
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException) { return false; }
    }

    private void Refuse(DateTimeOffset time, string rule, string? name, string? ip, int? port)
    {
        Interlocked.Increment(ref _refused);
        _audit.Write(new EgressRecord { Time = time, Kind = "connect", Verdict = "refused", Rule = rule, Name = name, Ip = ip, Port = port });
    }

    private async Task HandleDnsAsync(Socket guest)
    {
        using (guest)
        {
            if (!await _dnsSlots.WaitAsync(0).ConfigureAwait(false)) return;
            try
            {
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_cts.Token);
                timeout.CancelAfter(RequestTimeout);
                await using var ns = new NetworkStream(guest, ownsSocket: false);
                var q = await Frame.ReadAsync(ns, NetworkJson.Default.DnsExchange, timeout.Token, MaxRequestFrameBytes).ConfigureAwait(false);
                if (q is null || IsSevered) return;
                var time = DateTimeOffset.UtcNow;
                var outcome = await _dns.AnswerAsync(q.Message, timeout.Token).ConfigureAwait(false);
                Interlocked.Increment(ref _dnsQueries);
                _audit.Write(new EgressRecord
                {
                    Time = time, Kind = "dns", Verdict = outcome.Verdict, Rule = outcome.Rule, Name = outcome.Name,
                    Ip = outcome.Addresses.Count > 0 ? string.Join(",", outcome.Addresses) : null,
                });
                if (outcome.Answer.Length == 0 || IsSevered) return;
                await Frame.WriteAsync(ns, new DnsExchange { Message = outcome.Answer }, NetworkJson.Default.DnsExchange, timeout.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is ProtocolException or IOException or OperationCanceledException or SocketException or System.Text.Json.JsonException) { }
            finally { _dnsSlots.Release(); }
        }
    }

    /// <summary>
    /// Severs the network (quarantine): the listeners close (the vsock backend then resets new guest connections), every relay is
    /// aborted, DNS stops answering. Synchronous: when it returns no byte crosses any more.
    /// </summary>
    public void Sever()
    {
        if (Interlocked.Exchange(ref _severed, 1) != 0) return;
        _cts.Cancel();
        foreach (var (l, path) in _listeners)
        {
            l.Dispose();
            try { File.Delete(path); } catch (IOException) { }
        }
        _relays.AbortAll("severed");
        _log("egress broker: severed (listeners closed, connections aborted, DNS stopped)");
    }

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        Sever();
        try { await Task.WhenAll(_loops).ConfigureAwait(false); } catch (Exception) { }
    }
}

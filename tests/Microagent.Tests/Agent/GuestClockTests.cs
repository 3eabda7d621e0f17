using System.Net.Sockets;
using Microagent.Agent;
using Microagent.Guest.Exec;
using Microagent.Guest.Server;
using Microagent.Protocol;

namespace Microagent.Tests.Agent;

/// <summary>
/// The host's guest-clock sync: the real agent server reports its clock on a ping; against a peer whose clock jumps ahead once
/// after it is set (what a restored guest did once, docs/ARCHITECTURE.md "Snapshots") the sync sets it again.
/// </summary>
public sealed class GuestClockTests
{
    private static async Task<Stream> ConnectAsync(string path, CancellationToken ct)
    {
        var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await s.ConnectAsync(new UnixDomainSocketEndPoint(path), ct);
        return new NetworkStream(s, ownsSocket: true);
    }

    private static long Ns(DateTimeOffset t) => (t.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks) * 100;

    [Fact]
    public async Task The_real_agent_reports_its_wall_clock_on_a_ping()
    {
        string path = Path.Combine(Path.GetTempPath(), $"guest-clock-{Guid.NewGuid():N}.sock");
        using var stop = new CancellationTokenSource();
        var serve = Listeners.ServeUnixAsync(path, new AgentServer(new ExecEngine(new PerChildWaiter()), () => { }), stop.Token);
        try
        {
            var client = new AgentClient(ct => ConnectAsync(path, ct));
            var before = DateTimeOffset.UtcNow;
            var guest = await client.ReadClockAsync();
            var after = DateTimeOffset.UtcNow;
            Assert.NotNull(guest);
            Assert.InRange(guest.Value, before, after);
            Assert.Equal(TimeSpan.Zero, await GuestClock.SkewAsync(client, CancellationToken.None));
        }
        finally
        {
            await stop.CancelAsync();
            await serve;
            File.Delete(path);
        }
    }

    [Fact]
    public void Skew_is_the_distance_to_the_hosts_window()
    {
        var from = DateTimeOffset.UnixEpoch.AddSeconds(100);
        var to = from.AddMilliseconds(20);
        Assert.Equal(TimeSpan.Zero, GuestClock.Skew(from.AddMilliseconds(5), from, to));
        Assert.Equal(TimeSpan.FromSeconds(-9), GuestClock.Skew(from.AddSeconds(-9), from, to));
        Assert.Equal(TimeSpan.FromSeconds(9), GuestClock.Skew(to.AddSeconds(9), from, to));
    }

    [Fact]
    public async Task A_clock_that_jumps_ahead_after_the_first_set_is_set_again()
    {
        var guest = new JumpingGuest(offset: TimeSpan.FromSeconds(-10), jumpAfterFirstSet: TimeSpan.FromSeconds(9));
        await using var _ = guest;
        var sync = await GuestClock.SyncAsync(guest.Client, DateTimeOffset.UtcNow, CancellationToken.None);
        Assert.True(sync.Settled, sync.Describe());
        Assert.Equal(2, sync.Sets);
        Assert.True(sync.Before!.Value < TimeSpan.FromSeconds(-9), sync.Describe());
        Assert.True(sync.After!.Value.Duration() <= GuestClock.Tolerance, sync.Describe());
        Assert.Contains("guest clock set from the host", sync.Describe());
        Assert.Contains("2 tries", sync.Describe());
    }

    [Fact]
    public async Task A_clock_that_never_stays_set_is_reported_not_settled_after_the_last_try()
    {
        var guest = new JumpingGuest(offset: TimeSpan.Zero, jumpAfterFirstSet: TimeSpan.FromSeconds(5), jumpEverySet: true);
        await using var _ = guest;
        var sync = await GuestClock.SyncAsync(guest.Client, DateTimeOffset.UtcNow, CancellationToken.None);
        Assert.False(sync.Settled);
        Assert.Equal(GuestClock.MaxSets, sync.Sets);
        Assert.Contains("still", sync.Describe());
    }

    [Fact]
    public async Task A_guest_that_applies_a_set_late_is_set_ahead_by_half_the_round_trip()
    {
        // 0.8 s to reach the guest: a value of the moment it was sent would land 0.8 s behind, beyond the tolerance, every time.
        var guest = new JumpingGuest(offset: TimeSpan.FromSeconds(-10), jumpAfterFirstSet: TimeSpan.Zero, latency: TimeSpan.FromMilliseconds(800));
        await using var _ = guest;
        var sync = await GuestClock.SyncAsync(guest.Client, DateTimeOffset.UtcNow, CancellationToken.None);
        Assert.True(sync.Settled, sync.Describe());
        Assert.True(sync.After!.Value.Duration() <= GuestClock.Tolerance, sync.Describe());
    }

    /// <summary>A peer speaking the agent protocol for ping and set-clock whose clock is the host's plus an offset that a set moves.</summary>
    private sealed class JumpingGuest : IAsyncDisposable
    {
        private readonly string _path = Path.Combine(Path.GetTempPath(), $"guest-jump-{Guid.NewGuid():N}.sock");
        private readonly Socket _listener = new(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        private readonly CancellationTokenSource _stop = new();
        private readonly Task _serve;
        private readonly TimeSpan _jump;
        private readonly bool _jumpEverySet;
        private readonly TimeSpan _latency;
        private TimeSpan _offset;
        private int _sets;

        // latency: how long each request takes to reach the guest (a starved vCPU thread); answers go back at once.
        public JumpingGuest(TimeSpan offset, TimeSpan jumpAfterFirstSet, bool jumpEverySet = false, TimeSpan latency = default)
        {
            _latency = latency;
            _offset = offset;
            _jump = jumpAfterFirstSet;
            _jumpEverySet = jumpEverySet;
            _listener.Bind(new UnixDomainSocketEndPoint(_path));
            _listener.Listen(8);
            _serve = ServeAsync();
            Client = new AgentClient(ct => ConnectAsync(_path, ct));
        }

        public AgentClient Client { get; }

        private async Task ServeAsync()
        {
            try
            {
                while (true)
                {
                    await using var s = new NetworkStream(await _listener.AcceptAsync(_stop.Token), ownsSocket: true);
                    var request = await Frame.ReadAsync(s, ProtocolJson.Default.Request, _stop.Token);
                    if (_latency > TimeSpan.Zero) await Task.Delay(_latency, _stop.Token);
                    if (request?.Type == RequestTypes.SetClock)
                    {
                        _sets++;
                        _offset = DateTimeOffset.UnixEpoch.AddTicks(request.ClockUnixNs!.Value / 100) - DateTimeOffset.UtcNow;
                        if (_sets == 1 || _jumpEverySet) _offset += _jump; // the clock moves on after the set
                    }
                    string type = request?.Type == RequestTypes.Ping ? ResponseTypes.Pong : ResponseTypes.Ok;
                    await Frame.WriteAsync(s, new Response { Type = type, ClockUnixNs = Ns(DateTimeOffset.UtcNow + _offset) }, ProtocolJson.Default.Response, _stop.Token);
                }
            }
            catch (OperationCanceledException) { }
        }

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            await _serve;
            _listener.Dispose();
            File.Delete(_path);
            _stop.Dispose();
        }
    }
}

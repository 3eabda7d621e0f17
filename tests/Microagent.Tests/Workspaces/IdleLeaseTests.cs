using Microagent.Workspaces;

namespace Microagent.Tests.Workspaces;

public sealed class IdleLeaseTests
{
    private static readonly TimeSpan Ttl = TimeSpan.FromSeconds(10);
    private readonly ManualTime _time = new();

    [Fact]
    public void Expires_only_after_the_ttl_without_activity()
    {
        var lease = new IdleLease(Ttl, _time);
        _time.Advance(TimeSpan.FromSeconds(10));
        Assert.False(lease.Expired); // exactly the ttl is not past it
        _time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.True(lease.Expired);
        Assert.Equal(TimeSpan.FromSeconds(10.001), lease.Idle);
    }

    [Fact]
    public void Activity_renews_it()
    {
        var lease = new IdleLease(Ttl, _time);
        _time.Advance(TimeSpan.FromSeconds(9));
        lease.Touch();
        _time.Advance(TimeSpan.FromSeconds(9));
        Assert.False(lease.Expired);
        Assert.Equal(_time.GetUtcNow() - TimeSpan.FromSeconds(9), lease.LastActivity);
        _time.Advance(TimeSpan.FromSeconds(2));
        Assert.True(lease.Expired);
        lease.Touch();
        Assert.False(lease.Expired);
    }

    [Fact]
    public void Connections_count_as_activity_opened_since_the_last_look_or_still_open()
    {
        var lease = new IdleLease(Ttl, _time);
        _time.Advance(TimeSpan.FromSeconds(8));
        lease.Observe(opened: 1, active: 0); // a new connection
        Assert.Equal(TimeSpan.Zero, lease.Idle);
        _time.Advance(TimeSpan.FromSeconds(8));
        lease.Observe(opened: 1, active: 0); // nothing new, nothing open
        Assert.Equal(TimeSpan.FromSeconds(8), lease.Idle);
        lease.Observe(opened: 1, active: 1); // a long-lived connection is still open
        Assert.Equal(TimeSpan.Zero, lease.Idle);
        _time.Advance(TimeSpan.FromSeconds(11));
        Assert.True(lease.Expired);
        lease.Observe(opened: 1, active: 1);
        Assert.False(lease.Expired);
    }

    [Fact]
    public void A_permanent_lease_never_expires()
    {
        var lease = new IdleLease(TimeSpan.Zero, _time);
        _time.Advance(TimeSpan.FromDays(365));
        Assert.True(lease.IsPermanent);
        Assert.False(lease.Expired);
    }

    [Fact]
    public void A_paused_lease_does_not_run_down_and_resumes_with_the_idle_time_it_had()
    {
        var lease = new IdleLease(Ttl, _time);
        _time.Advance(TimeSpan.FromSeconds(6));
        lease.Pause();
        lease.Pause(); // idempotent
        _time.Advance(TimeSpan.FromHours(1));
        Assert.True(lease.IsPaused);
        Assert.False(lease.Expired);
        Assert.Equal(TimeSpan.FromSeconds(6), lease.Idle);
        lease.Resume();
        Assert.False(lease.IsPaused);
        Assert.Equal(TimeSpan.FromSeconds(6), lease.Idle);
        _time.Advance(TimeSpan.FromSeconds(4));
        Assert.False(lease.Expired);
        _time.Advance(TimeSpan.FromSeconds(1));
        Assert.True(lease.Expired);
    }

    [Fact]
    public void Activity_while_paused_restarts_the_idle_time()
    {
        var lease = new IdleLease(Ttl, _time);
        _time.Advance(TimeSpan.FromSeconds(9));
        lease.Pause();
        _time.Advance(TimeSpan.FromSeconds(30));
        lease.Touch();
        _time.Advance(TimeSpan.FromSeconds(30));
        lease.Resume();
        Assert.Equal(TimeSpan.Zero, lease.Idle);
        _time.Advance(TimeSpan.FromSeconds(10));
        Assert.False(lease.Expired);
    }
}

namespace Microagent.Workspaces;

/// <summary>
/// A workspace's idle lease (<c>--ttl</c>, docs/ARCHITECTURE.md "Supervisor"): it expires after <see cref="Ttl"/> without
/// activity. Activity is an explicit <see cref="Touch"/> (a relayed connection or byte) or, through <see cref="Observe"/>, any
/// vsock connection opened since the last look or still open. While <see cref="IsPaused"/> the lease does not run down:
/// the paused time is not idle time, so a resumed workspace has exactly the idle budget it had when it was paused.
/// Invariants: a permanent lease (<see cref="Ttl"/> zero) never expires; a paused lease never expires; times come only from
/// the <see cref="TimeProvider"/> given (monotonic timestamps for idle time, wall clock only to report it). Thread-safe.
/// </summary>
internal sealed class IdleLease
{
    private readonly TimeProvider _time;
    private readonly object _gate = new();
    private long _lastActivity;   // timestamp of the last activity, shifted forward by time spent paused
    private long? _pausedAt;
    private long _seenConnections;

    public IdleLease(TimeSpan ttl, TimeProvider? time = null)
    {
        if (ttl < TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(ttl));
        Ttl = ttl;
        _time = time ?? TimeProvider.System;
        _lastActivity = _time.GetTimestamp();
    }

    /// <summary>Idle time after which the lease expires; zero = permanent.</summary>
    public TimeSpan Ttl { get; }

    /// <summary>The lease never expires.</summary>
    public bool IsPermanent => Ttl == TimeSpan.Zero;

    /// <summary>Paused: idle time does not accumulate.</summary>
    public bool IsPaused { get { lock (_gate) return _pausedAt is not null; } }

    /// <summary>Idle time so far (frozen while paused).</summary>
    public TimeSpan Idle
    {
        get
        {
            lock (_gate) return _time.GetElapsedTime(_lastActivity, _pausedAt ?? _time.GetTimestamp());
        }
    }

    /// <summary>Wall-clock time of the last activity (as idle time counts it).</summary>
    public DateTimeOffset LastActivity => _time.GetUtcNow() - Idle;

    /// <summary>The idle time exceeded the TTL (never while paused or permanent).</summary>
    public bool Expired
    {
        get
        {
            if (IsPermanent) return false;
            lock (_gate) return _pausedAt is null && _time.GetElapsedTime(_lastActivity) > Ttl;
        }
    }

    /// <summary>Activity now: the idle time restarts.</summary>
    public void Touch()
    {
        lock (_gate)
        {
            long now = _time.GetTimestamp();
            _lastActivity = now;
            if (_pausedAt is not null) _pausedAt = now;
        }
    }

    /// <summary>Connections count as activity: any opened since the last look (<paramref name="opened"/> is a running total) or any open now.</summary>
    public void Observe(long opened, int active)
    {
        lock (_gate)
        {
            if (opened == _seenConnections && active == 0) return;
            _seenConnections = opened;
        }
        Touch();
    }

    /// <summary>Stops the lease from running down (no-op when already paused).</summary>
    public void Pause()
    {
        lock (_gate) _pausedAt ??= _time.GetTimestamp();
    }

    /// <summary>Lets the lease run down again from the idle time it had when paused (no-op when not paused).</summary>
    public void Resume()
    {
        lock (_gate)
        {
            if (_pausedAt is not { } at) return;
            long now = _time.GetTimestamp();
            _lastActivity += now - at;
            _pausedAt = null;
        }
    }
}

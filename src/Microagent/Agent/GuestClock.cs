using System.Diagnostics;
using System.Globalization;

namespace Microagent.Agent;

/// <summary>
/// Sets a guest's wall clock from the host's and checks that it stays set (docs/ARCHITECTURE.md "Pause and resume" and
/// "Snapshots"): after a resume or a restore the guest clock lags by the time its vCPUs stood still. The guest's clock is read
/// (a ping round trip, which reports it), set, and read again on a new round trip the guest serves after the set; when the
/// second reading is off the host's by more than <see cref="Tolerance"/>, it is set again, up to <see cref="MaxSets"/> times.
/// Each value sent is the host's clock at the moment of sending plus half the round trip of the last reading: the guest
/// applies it one way later, and on a loaded host (TCG vCPU threads starved) that one way can be seconds, which a value
/// of the moment it was sent (or, before, of the moment the sync began) would leave the guest behind by.
/// </summary>
internal static class GuestClock
{
    /// <summary>How far a guest clock may be from the host's window around the reading and count as set.</summary>
    public static readonly TimeSpan Tolerance = TimeSpan.FromMilliseconds(500);

    /// <summary>At most this many set-clock requests per sync.</summary>
    public const int MaxSets = 4;

    /// <summary>Sets the guest clock to the host's, <paramref name="now"/> being the host's clock when the call is made; see the type.</summary>
    public static async Task<GuestClockSync> SyncAsync(AgentClient agent, DateTimeOffset now, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(agent);
        long start = Stopwatch.GetTimestamp();
        var (before, roundTrip) = await ReadAsync(agent, ct).ConfigureAwait(false);
        TimeSpan? skew = null;
        for (int sets = 1; sets <= MaxSets; sets++)
        {
            await agent.SetClockAsync(now + Stopwatch.GetElapsedTime(start) + roundTrip / 2, ct).ConfigureAwait(false);
            (skew, roundTrip) = await ReadAsync(agent, ct).ConfigureAwait(false);
            if (skew is not { } s || s.Duration() <= Tolerance) return new GuestClockSync(before, skew, sets, Settled: true);
        }
        return new GuestClockSync(before, skew, MaxSets, Settled: false);
    }

    /// <summary>
    /// How far the guest's clock is from the host's: zero when the guest's reading falls in the host's window around the
    /// round trip, else its distance to the window (negative: the guest is behind); null when the agent does not report its clock.
    /// </summary>
    public static async Task<TimeSpan?> SkewAsync(AgentClient agent, CancellationToken ct) => (await ReadAsync(agent, ct).ConfigureAwait(false)).Skew;

    /// <summary>The skew (<see cref="SkewAsync"/>) and the round trip that measured it.</summary>
    private static async Task<(TimeSpan? Skew, TimeSpan RoundTrip)> ReadAsync(AgentClient agent, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(agent);
        var from = DateTimeOffset.UtcNow;
        DateTimeOffset? guest = await agent.ReadClockAsync(ct).ConfigureAwait(false);
        var to = DateTimeOffset.UtcNow;
        return (guest is not { } g ? null : Skew(g, from, to), to - from);
    }

    /// <summary>The distance of <paramref name="guest"/> to the host's window [<paramref name="from"/>, <paramref name="to"/>] (zero inside it).</summary>
    public static TimeSpan Skew(DateTimeOffset guest, DateTimeOffset from, DateTimeOffset to) =>
        guest < from ? guest - from : guest > to ? guest - to : TimeSpan.Zero;
}

/// <summary>
/// What a <see cref="GuestClock.SyncAsync"/> did: the guest's skew before (<paramref name="Before"/>) and after it
/// (<paramref name="After"/>; null where the agent does not report its clock), how many set-clock requests it took, and whether the last
/// reading was within the tolerance.
/// </summary>
internal sealed record GuestClockSync(TimeSpan? Before, TimeSpan? After, int Sets, bool Settled)
{
    /// <summary>One line for the supervisor log and the state detail.</summary>
    public string Describe()
    {
        string was = Before is { } b ? $"; it was {Seconds(b)} s off" : "";
        string now = After is { } a ? $", now {Seconds(a)} s" : "";
        string tries = Sets > 1 ? $" ({Sets} tries: the guest clock moved after a set)" : "";
        return Settled
            ? $"guest clock set from the host{was}{now}{tries}"
            : $"guest clock set from the host {Sets} times but still {Seconds(After ?? TimeSpan.Zero)} s off{was}";
    }

    private static string Seconds(TimeSpan t) => t.TotalSeconds.ToString("0.000", CultureInfo.InvariantCulture);
}

namespace Microagent.Tests.Workspaces;

/// <summary>A clock that moves only when told (the BCL's TimeProvider seam; no test package needed).</summary>
public sealed class ManualTime : TimeProvider
{
    private long _ticks;
    private readonly DateTimeOffset _epoch = new(2026, 12, 2, 8, 0, 0, TimeSpan.Zero);

    public override long TimestampFrequency => TimeSpan.TicksPerSecond;
    public override long GetTimestamp() => Interlocked.Read(ref _ticks);
    public override DateTimeOffset GetUtcNow() => _epoch + TimeSpan.FromTicks(GetTimestamp());
    public void Advance(TimeSpan by) => Interlocked.Add(ref _ticks, by.Ticks);
}

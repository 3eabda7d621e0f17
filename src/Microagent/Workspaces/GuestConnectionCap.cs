using System.Globalization;
using Microagent.Vsock;

namespace Microagent.Workspaces;

/// <summary>
/// The per-workspace cap on connections the guest holds open to host listeners (<c>--vsock</c> mappings and the
/// mediation channel; docs/ARCHITECTURE.md "Vsock"): the supervisor reads it once at start from
/// <see cref="EnvironmentVariable"/> (default <see cref="VsockBackendOptions.DefaultMaxGuestConnections"/>), the vsock
/// device resets requests beyond it, and this type turns refusals into a log line and a workspace event, at most one
/// of each per <see cref="ReportInterval"/> so a flood cannot grow the log either.
/// </summary>
internal sealed class GuestConnectionCap(WorkspaceStore store, int max, Action<string> log)
{
    /// <summary>Overrides the cap for workspaces started from this environment (the supervisor inherits it from <c>start</c>).</summary>
    public const string EnvironmentVariable = "MICROAGENT_MAX_GUEST_CONNECTIONS";

    /// <summary>The accepted range of the cap.</summary>
    public static WorkspaceLimit Limit { get; } = new("max_guest_connections", 1, VsockDevice.MaxConnections / 2, "",
        "Most connections the guest may hold open to host listeners (--vsock mappings, mediation) at once");

    /// <summary>Shortest time between two reports of refused connections.</summary>
    public static readonly TimeSpan ReportInterval = TimeSpan.FromSeconds(30);

    private long _refused, _lastReportTicks = long.MinValue;

    /// <summary>The cap.</summary>
    public int Max => max;

    /// <summary>Guest connections refused so far.</summary>
    public long Refused => Interlocked.Read(ref _refused);

    /// <summary>The cap from <see cref="EnvironmentVariable"/> (checked against <see cref="Limit"/>), else the default.</summary>
    public static int FromEnvironment()
    {
        string? text = Environment.GetEnvironmentVariable(EnvironmentVariable);
        if (string.IsNullOrEmpty(text)) return VsockBackendOptions.DefaultMaxGuestConnections;
        if (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int value))
            throw new WorkspaceSpecException($"{EnvironmentVariable}={text} is not a number", Limit.Remediation) { Field = Limit.Field };
        Limit.Check(value);
        return value;
    }

    /// <summary>Called by the vsock device (on its loop) for each refused request: counts it, reports off the loop.</summary>
    public void OnRefused(int cap)
    {
        long refused = Interlocked.Increment(ref _refused);
        long now = Environment.TickCount64, last = Interlocked.Read(ref _lastReportTicks);
        if (last != long.MinValue && now - last < (long)ReportInterval.TotalMilliseconds) return;
        if (Interlocked.CompareExchange(ref _lastReportTicks, now, last) != last) return;
        _ = Task.Run(() => Report(cap, refused));
    }

    private void Report(int cap, long refused)
    {
        string detail = $"guest connection cap reached: {cap} connections to host listeners are open; further ones are refused " +
            $"({refused} so far; {EnvironmentVariable} sets the cap)";
        log($"vsock: {detail}");
        try
        {
            var state = store.ReadState().State;
            store.AppendEvent(new WorkspaceEvent(store.Name, state, state, detail, DateTimeOffset.UtcNow));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { log($"vsock: cannot record the cap event: {e.Message}"); }
    }
}

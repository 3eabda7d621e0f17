using System.Globalization;
using System.Text.Json.Serialization;

namespace Microagent.Protocol;

// The guest's side of `stats` (docs/ARCHITECTURE.md "Stats"): Request{type:"guest-stats"} is answered by
// Response{type:"guest-stats", guestStats}, read from the guest kernel's /proc/meminfo and /proc/uptime (proc(5)).

/// <summary>What the guest kernel says about its memory and uptime (agent <c>guest-stats</c>).</summary>
internal sealed class GuestStats
{
    /// <summary><c>MemTotal</c> of /proc/meminfo, in bytes: the RAM the guest kernel manages (a little under the VM's memory).</summary>
    [JsonPropertyName("memTotalBytes")] public long MemTotalBytes { get; set; }
    /// <summary><c>MemAvailable</c> of /proc/meminfo, in bytes: what new work could get without swapping.</summary>
    [JsonPropertyName("memAvailableBytes")] public long MemAvailableBytes { get; set; }
    /// <summary><c>MemFree</c> of /proc/meminfo, in bytes.</summary>
    [JsonPropertyName("memFreeBytes")] public long MemFreeBytes { get; set; }
    /// <summary>The first field of /proc/uptime, in milliseconds: time since the guest kernel started (stands still while paused).</summary>
    [JsonPropertyName("uptimeMs")] public long UptimeMs { get; set; }
}

/// <summary>
/// The <c>Key:   value kB</c> lines of /proc/meminfo and /proc/PID/smaps_rollup (proc(5)): one parser for the guest's meminfo
/// and the host's smaps_rollup.
/// </summary>
internal static class ProcKilobytes
{
    /// <summary>The value of <paramref name="key"/> in bytes (the file gives kB = KiB); null when the key is absent or malformed.</summary>
    public static long? Bytes(string text, string key)
    {
        foreach (var line in text.AsSpan().EnumerateLines())
        {
            int colon = line.IndexOf(':');
            if (colon <= 0 || !line[..colon].SequenceEqual(key)) continue;
            var rest = line[(colon + 1)..].Trim();
            bool kib = rest.EndsWith("kB", StringComparison.Ordinal);
            if (kib) rest = rest[..^2].TrimEnd();
            if (!long.TryParse(rest, NumberStyles.None, CultureInfo.InvariantCulture, out long n)) return null;
            return kib ? n * 1024 : n;
        }
        return null;
    }

    /// <summary>Guest stats from the text of /proc/meminfo and /proc/uptime (missing keys read as 0).</summary>
    public static GuestStats Guest(string meminfo, string uptime)
    {
        string first = uptime.Split(' ', 2)[0].Trim();
        long uptimeMs = double.TryParse(first, NumberStyles.Float, CultureInfo.InvariantCulture, out double s) ? (long)(s * 1000) : 0;
        return new GuestStats
        {
            MemTotalBytes = Bytes(meminfo, "MemTotal") ?? 0,
            MemAvailableBytes = Bytes(meminfo, "MemAvailable") ?? 0,
            MemFreeBytes = Bytes(meminfo, "MemFree") ?? 0,
            UptimeMs = uptimeMs,
        };
    }
}

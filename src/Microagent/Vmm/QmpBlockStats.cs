using System.Text.Json.Nodes;

namespace Microagent.Vmm;

/// <summary>One drive's I/O totals since QEMU started (QMP <c>query-blockstats</c>, QEMU qapi/block-core.json <c>BlockStats</c>/<c>BlockDeviceStats</c>).</summary>
/// <param name="Device">The drive's id (<c>-drive id=</c>: <c>root</c>, <c>data0</c>, …; the BlockStats <c>device</c> field).</param>
/// <param name="ReadBytes"><c>rd_bytes</c>.</param>
/// <param name="WriteBytes"><c>wr_bytes</c>.</param>
/// <param name="ReadOps"><c>rd_operations</c>.</param>
/// <param name="WriteOps"><c>wr_operations</c>.</param>
internal readonly record struct QmpDriveStats(string Device, long ReadBytes, long WriteBytes, long ReadOps, long WriteOps);

/// <summary>QMP <c>query-blockstats</c> (docs/ARCHITECTURE.md "Stats"): its return value read into <see cref="QmpDriveStats"/>.</summary>
internal static class QmpBlockStats
{
    /// <summary>The QMP command.</summary>
    public const string Command = "query-blockstats";

    /// <summary>
    /// The drives of a <c>query-blockstats</c> return (an array of BlockStats), in the order QEMU lists them; entries without a
    /// <c>device</c> name (nodes that are not a drive) are skipped, a missing counter reads as 0.
    /// </summary>
    public static IReadOnlyList<QmpDriveStats> Parse(JsonNode? result)
    {
        var drives = new List<QmpDriveStats>();
        if (result is not JsonArray array) return drives;
        foreach (var entry in array)
        {
            if (entry is not JsonObject o || Text(o["device"]) is not { Length: > 0 } device || o["stats"] is not JsonObject s) continue;
            drives.Add(new QmpDriveStats(device, Number(s["rd_bytes"]), Number(s["wr_bytes"]), Number(s["rd_operations"]), Number(s["wr_operations"])));
        }
        return drives;
    }

    private static string? Text(JsonNode? n) => n is JsonValue v && v.TryGetValue(out string? s) ? s : null;

    private static long Number(JsonNode? n) => n is JsonValue v && v.TryGetValue(out long l) ? l : 0;
}

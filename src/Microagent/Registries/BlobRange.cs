using System.Globalization;
using System.Net.Http.Headers;

namespace Microagent.Registries;

/// <summary>
/// The byte-range wire format a resumed blob download uses (RFC 9110 §14.2 <c>Range</c>, §14.4 <c>Content-Range</c>, §15.3.7
/// 206 Partial Content, §15.5.17 416): the OCI distribution spec lets registries serve ranges of blobs, and one that does not
/// answers 200 with the whole blob, which the client then takes from the start.
/// </summary>
internal static class BlobRange
{
    /// <summary>The request header asking for everything from <paramref name="offset"/> on: <c>Range: bytes=OFFSET-</c>.</summary>
    public static RangeHeaderValue From(long offset) => new(offset, null);

    /// <summary>
    /// Whether a 206 answer's <c>Content-Range</c> is exactly <c>bytes OFFSET-(SIZE-1)/SIZE</c>: the rest of this blob. A registry
    /// that answers another range (or none) is not trusted with the partial file.
    /// </summary>
    public static bool IsRest(ContentRangeHeaderValue? range, long offset, long size) =>
        range is { Unit: "bytes", HasRange: true, HasLength: true } r && r.From == offset && r.To == size - 1 && r.Length == size;

    /// <summary>For logs: <c>bytes=OFFSET-</c>.</summary>
    public static string Describe(long offset) => string.Create(CultureInfo.InvariantCulture, $"bytes={offset}-");
}

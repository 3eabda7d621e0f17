using System.Globalization;

namespace Microagent.Tools;

/// <summary>The one way a byte count is written for people: binary units, one decimal (<c>12.3 MiB</c>).</summary>
internal static class ByteSize
{
    /// <summary>"12.3 MiB" style, culture-invariant.</summary>
    public static string Format(long bytes) => bytes switch
    {
        >= 1L << 30 => string.Create(CultureInfo.InvariantCulture, $"{bytes / (double)(1L << 30):0.0} GiB"),
        >= 1L << 20 => string.Create(CultureInfo.InvariantCulture, $"{bytes / (double)(1L << 20):0.0} MiB"),
        >= 1L << 10 => string.Create(CultureInfo.InvariantCulture, $"{bytes / 1024.0:0.0} KiB"),
        _ => $"{bytes} B",
    };
}

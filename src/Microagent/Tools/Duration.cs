using System.Globalization;
using Microagent.Errors;

namespace Microagent.Tools;

/// <summary>
/// The one duration syntax of every time a user gives (CLI <c>--timeout</c>, <c>--ttl</c>, <c>--wait-timeout</c>, spec files):
/// plain seconds (<c>30</c>, <c>1.5</c>) or a number with a unit, <c>ms</c>, <c>s</c>, <c>m</c> or <c>h</c> (<c>300ms</c>,
/// <c>30s</c>, <c>5m</c>, <c>1h</c>). See docs/ARCHITECTURE.md "Command line".
/// </summary>
internal static class Duration
{
    /// <summary>The accepted forms, for messages and help text.</summary>
    public const string Forms = "seconds (30, 1.5) or a number with a unit: 300ms, 30s, 5m, 1h";

    private static readonly (string Suffix, double Seconds)[] Units = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)];

    /// <summary>
    /// Parses <paramref name="text"/>; a value that is not a duration, is negative, or is too large is
    /// <see cref="ErrorKind.Invalid"/> with a message naming <paramref name="what"/> (the flag or field) and
    /// <see cref="MicroagentException.Field"/> set to <paramref name="field"/>.
    /// </summary>
    public static TimeSpan Parse(string? text, string what, string? field = null) =>
        TryParse(text, out var value, out string? why)
            ? value
            : throw new MicroagentException(ErrorKind.Invalid, $"{what}: '{text}' is not a duration ({why})", $"give {Forms}") { Field = field };

    /// <summary>Parses <paramref name="text"/>; on failure <paramref name="why"/> says what is wrong in words.</summary>
    public static bool TryParse(string? text, out TimeSpan value, out string? why)
    {
        value = default;
        string s = (text ?? "").Trim().ToLowerInvariant();
        if (s.Length == 0) { why = "it is empty"; return false; }
        double scale = 1;
        foreach (var (suffix, seconds) in Units)
            if (s.EndsWith(suffix, StringComparison.Ordinal) && s.Length > suffix.Length && (char.IsDigit(s[^(suffix.Length + 1)]) || s[^(suffix.Length + 1)] == '.'))
            {
                s = s[..^suffix.Length];
                scale = seconds;
                break;
            }
        if (!double.TryParse(s, NumberStyles.AllowDecimalPoint | NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out double n) || !double.IsFinite(n))
        {
            why = "expected a number, optionally followed by ms, s, m or h";
            return false;
        }
        if (n < 0) { why = "it is negative"; return false; }
        double total = n * scale;
        if (total > TimeSpan.FromDays(365).TotalSeconds) { why = "it is longer than a year"; return false; }
        value = TimeSpan.FromSeconds(total);
        why = null;
        return true;
    }

    /// <summary>A short form that <see cref="Parse"/> reads back: <c>300ms</c>, <c>30s</c>, <c>90m</c>, <c>2h</c>.</summary>
    public static string Format(TimeSpan t) =>
        t < TimeSpan.FromSeconds(1) ? FormattableString.Invariant($"{t.TotalMilliseconds:0.###}ms")
        : t.TotalSeconds % 60 != 0 || t < TimeSpan.FromMinutes(1) ? FormattableString.Invariant($"{t.TotalSeconds:0.###}s")
        : t.TotalMinutes % 60 != 0 || t < TimeSpan.FromHours(1) ? FormattableString.Invariant($"{t.TotalMinutes:0}m")
        : FormattableString.Invariant($"{t.TotalHours:0}h");
}

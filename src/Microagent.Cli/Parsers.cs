using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using System.Text.RegularExpressions;
using Microagent.Tools;

namespace Microagent.Cli;

/// <summary>
/// The value parser of every option, by its type, with messages in words (docs/ARCHITECTURE.md "Command line"):
/// System.CommandLine's own failure names a .NET type ("System.Nullable`1[System.Int32]"), which no user should read.
/// Durations go through the library's <see cref="Duration"/>, the one syntax of every time.
/// </summary>
internal static partial class Parsers
{
    /// <summary>Attaches a parser to every option of <paramref name="command"/> and its subcommands that has none.</summary>
    public static void Install(Command command)
    {
        foreach (var o in command.Options) Attach(o);
        foreach (var c in command.Subcommands) Install(c);
    }

    private static void Attach(Option option)
    {
        string flag = option.Name;
        switch (option)
        {
            case Option<int> o when o.CustomParser is null: o.CustomParser = r => (int)(Whole(r, flag, int.MinValue, int.MaxValue) ?? 0); break;
            case Option<int?> o when o.CustomParser is null: o.CustomParser = r => (int?)Whole(r, flag, int.MinValue, int.MaxValue); break;
            case Option<long> o when o.CustomParser is null: o.CustomParser = r => Whole(r, flag, long.MinValue, long.MaxValue) ?? 0; break;
            case Option<long?> o when o.CustomParser is null: o.CustomParser = r => Whole(r, flag, long.MinValue, long.MaxValue); break;
            case Option<TimeSpan?> o when o.CustomParser is null: o.CustomParser = r => Time(r, flag); break;
        }
    }

    /// <summary>A whole number in [min, max], or null (and a parse error in words).</summary>
    public static long? Whole(ArgumentResult r, string flag, long min, long max)
    {
        if (r.Tokens.Count == 0) return null;
        string text = r.Tokens[^1].Value;
        if (long.TryParse(text.Trim(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long n) && n >= min && n <= max) return n;
        r.AddError(WholeMessage(flag, text));
        return null;
    }

    /// <summary>The message of a value of <paramref name="flag"/> that is not a whole number.</summary>
    public static string WholeMessage(string flag, string text) => $"{flag}: '{text}' is not a whole number (example: {flag} 512)";

    /// <summary>A duration (<see cref="Duration.Forms"/>), or null (and a parse error in words).</summary>
    public static TimeSpan? Time(ArgumentResult r, string flag)
    {
        if (r.Tokens.Count == 0) return null;
        string text = r.Tokens[^1].Value;
        if (Duration.TryParse(text, out var value, out string? why)) return value;
        r.AddError($"{flag}: '{text}' is not a duration ({why}); give {Duration.Forms}");
        return null;
    }

    /// <summary>
    /// A parse error's message in words. Values of options with a parser above already are; this catches what is left
    /// (an argument System.CommandLine could not convert) so that no .NET type name is ever printed.
    /// </summary>
    public static string Words(string message)
    {
        var m = TypeFailure().Match(message);
        if (m.Success) return $"'{m.Groups["value"].Value}' is not a valid value for {m.Groups["symbol"].Value}";
        return message.Contains("System.", StringComparison.Ordinal) ? SystemType().Replace(message, "a value of the expected kind") : message;
    }

    [GeneratedRegex(@"Cannot parse argument '(?<value>.*)' for (option|command|argument) '(?<symbol>[^']*)'")]
    private static partial Regex TypeFailure();

    [GeneratedRegex(@"'?System\.[\w`\[\]\.,]+'?")]
    private static partial Regex SystemType();
}

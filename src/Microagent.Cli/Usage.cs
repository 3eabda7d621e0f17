using System.CommandLine;
using System.CommandLine.Help;
using System.CommandLine.Invocation;
using System.CommandLine.Parsing;
using Microagent.Errors;

namespace Microagent.Cli;

/// <summary>
/// Command-line manners (docs/ARCHITECTURE.md "Command line"): a verb's help is its whole description (examples included)
/// while a listing of verbs shows only each one's first line; a group without its subverb prints its help (exit 0);
/// an unknown verb or flag gets "did you mean".
/// </summary>
internal static class Usage
{
    private static readonly Dictionary<Command, string> Full = [];

    /// <summary>Shortens every subcommand's description to its first line (kept whole for its own help) and gives groups their help as action.</summary>
    public static void Install(RootCommand root)
    {
        foreach (var option in root.Options)
            if (option is HelpOption help) help.Action = new VerbHelpAction();
        Walk(root);
    }

    private static void Walk(Command command)
    {
        foreach (var sub in command.Subcommands)
        {
            if (sub.Description is { } d && Summary(d) is var summary && summary != d)
            {
                Full[sub] = d;
                sub.Description = summary;
            }
            if (sub.Subcommands.Count > 0 && sub.Action is null)
                sub.SetAction(r => Print(r));
            Walk(sub);
        }
    }

    /// <summary>The first sentence of a description's first paragraph, on one line.</summary>
    public static string Summary(string description)
    {
        string paragraph = string.Join(' ', description.Replace("\r", "").Split("\n\n")[0].Split('\n').Select(l => l.Trim()));
        for (int i = paragraph.IndexOf(". ", StringComparison.Ordinal); i >= 0; i = paragraph.IndexOf(". ", i + 1, StringComparison.Ordinal))
            if (i + 2 < paragraph.Length && char.IsUpper(paragraph[i + 2])) return paragraph[..(i + 1)];
        return paragraph;
    }

    /// <summary>Prints the help of the parsed command; 0.</summary>
    public static int Print(ParseResult r)
    {
        var command = r.CommandResult.Command;
        if (Full.TryGetValue(command, out string? full)) command.Description = full;
        return new HelpAction().Invoke(r);
    }

    /// <summary>Help was asked for: it is printed even when the rest of the line does not parse (a verb's missing arguments).</summary>
    public static bool IsHelp(ParseResult parse) => parse.Action is VerbHelpAction;

    private sealed class VerbHelpAction : SynchronousCommandLineAction
    {
        public override int Invoke(ParseResult parseResult) => Print(parseResult);
    }

    /// <summary>The usage error of a parse that failed: "did you mean" for an unknown verb or flag, otherwise the messages in words.</summary>
    public static MicroagentException Error(ParseResult parse)
    {
        var result = parse.CommandResult;
        string path = Path(result);
        string see = $"see `{path} --help`";
        foreach (string token in parse.UnmatchedTokens)
        {
            bool flag = token.StartsWith('-');
            var level = flag ? result.Command : LevelOf(parse, token);
            if (!flag)
            {
                result = parse.CommandResult;
                while (result.Command != level && result.Parent is CommandResult parent) result = parent;
                path = Path(result);
                see = $"see `{path} --help`";
            }
            var candidates = flag
                ? Ancestry(result).SelectMany(c => c.Options).Where(o => !o.Hidden).SelectMany(o => o.Aliases.Prepend(o.Name))
                : level.Subcommands.Where(c => !c.Hidden).SelectMany(c => c.Aliases.Prepend(c.Name));
            if (!flag && level.Subcommands.Count == 0) continue;
            string typed = flag ? token.Split('=')[0] : token;
            var close = Closest(typed, candidates);
            string what = flag ? $"unknown option '{typed}' for `{path}`" : $"unknown command '{token}' for `{path}`";
            string hint = close.Count switch
            {
                0 => see,
                1 => $"did you mean `{path} {close[0]}`?",
                _ => $"did you mean one of: {string.Join(", ", close.Select(c => $"`{path} {c}`"))}?",
            };
            return MicroagentException.Invalid(what, hint);
        }
        string message = string.Join("; ", parse.Errors.Select(e => Parsers.Words(e.Message)).Distinct());
        return MicroagentException.Invalid(message, see);
    }

    /// <summary>
    /// The names <paramref name="typed"/> was probably meant to be: the one name it is a prefix of, else the names within a
    /// small edit distance (1 for short words, 2 from 5 characters on), nearest first.
    /// </summary>
    public static IReadOnlyList<string> Closest(string typed, IEnumerable<string> names)
    {
        var all = names.Distinct(StringComparer.Ordinal).ToList();
        var prefixed = all.Where(n => n.StartsWith(typed, StringComparison.Ordinal)).ToList();
        if (typed.TrimStart('-').Length >= 2 && prefixed.Count == 1) return prefixed;
        int limit = typed.TrimStart('-').Length >= 5 ? 2 : 1;
        return all.Select(n => (Name: n, Distance: Distance(typed, n))).Where(x => x.Distance <= limit)
            .OrderBy(x => x.Distance).ThenBy(x => x.Name, StringComparer.Ordinal).Select(x => x.Name).Take(3).ToList();
    }

    /// <summary>Optimal string alignment distance (Levenshtein plus adjacent transpositions).</summary>
    public static int Distance(string a, string b)
    {
        var d = new int[a.Length + 1, b.Length + 1];
        for (int i = 0; i <= a.Length; i++) d[i, 0] = i;
        for (int j = 0; j <= b.Length; j++) d[0, j] = j;
        for (int i = 1; i <= a.Length; i++)
            for (int j = 1; j <= b.Length; j++)
            {
                int cost = a[i - 1] == b[j - 1] ? 0 : 1;
                d[i, j] = Math.Min(Math.Min(d[i - 1, j] + 1, d[i, j - 1] + 1), d[i - 1, j - 1] + cost);
                if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) d[i, j] = Math.Min(d[i, j], d[i - 2, j - 2] + 1);
            }
        return d[a.Length, b.Length];
    }

    /// <summary>The command an unmatched word was given to: the deepest one named before it (<c>imag list</c>: the root).</summary>
    private static Command LevelOf(ParseResult parse, string word)
    {
        Command level = parse.RootCommandResult.Command;
        foreach (var t in parse.Tokens)
        {
            if (t.Type == TokenType.Command && level.Subcommands.FirstOrDefault(c => c.Name == t.Value || c.Aliases.Contains(t.Value)) is { } sub) level = sub;
            else if (t.Value == word) return level;
        }
        return level;
    }

    private static IEnumerable<Command> Ancestry(CommandResult result)
    {
        for (SymbolResult? s = result; s is not null; s = s.Parent)
            if (s is CommandResult c) yield return c.Command;
    }

    /// <summary>"microagent image" for the result of <c>image</c>.</summary>
    public static string Path(CommandResult result) =>
        string.Join(' ', Ancestry(result).Reverse().Select(c => c is RootCommand ? "microagent" : c.Name));
}

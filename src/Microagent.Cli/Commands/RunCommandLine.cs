using System.CommandLine;

namespace Microagent.Cli.Commands;

/// <summary>
/// The Docker form of <c>run</c>: <c>microagent run [OPTIONS] IMAGE [CMD ARG...]</c>. Everything after IMAGE belongs to the guest
/// command, flags included, as in <c>docker run</c>; so before parsing, the first positional word of <c>run</c> becomes
/// <c>--image IMAGE --</c> (or just <c>--</c> when <c>--image</c> was given: then it starts the command). A command line that
/// already has <c>--</c> before any positional word, or has a help flag before its <c>--</c>, is left as it is (help never runs
/// anything: <c>run IMAGE CMD --help</c> prints run's help; <c>run IMAGE -- CMD --help</c> passes it to CMD).
/// </summary>
internal static class RunCommandLine
{
    private static readonly HashSet<string> HelpTokens = ["--help", "-h", "-?", "/?", "/h"];

    public static string[] Rewrite(RootCommand root, string[] args)
    {
        var globals = root.Options.ToList();
        int verb = FirstPositional(args, 0, globals);
        if (verb < 0 || args[verb] != "run" || root.Subcommands.FirstOrDefault(c => c.Name == "run") is not { } run) return args;
        var options = run.Options.Concat(globals.Where(o => o.Recursive)).ToList();
        int first = FirstPositional(args, verb + 1, options);
        if (first < 0) return args;
        if (args.TakeWhile(a => a != "--").Any(HelpTokens.Contains)) return args;
        bool imageGiven = args.Skip(verb + 1).Take(first - verb - 1).Any(a => a == "--image" || a.StartsWith("--image=", StringComparison.Ordinal));
        return imageGiven
            ? [.. args[..first], "--", .. args[first..]]
            : [.. args[..first], "--image", args[first], "--", .. args[(first + 1)..]];
    }

    /// <summary>Index of the first word at or after <paramref name="from"/> that is neither an option nor an option's value; -1 when <c>--</c> or the end comes first.</summary>
    private static int FirstPositional(string[] args, int from, List<Option> options)
    {
        for (int i = from; i < args.Length; i++)
        {
            string a = args[i];
            if (a == "--") return -1;
            if (a.Length < 2 || a[0] != '-') return i;
            if (a.Contains('=')) continue;
            var o = options.FirstOrDefault(x => x.Name == a || x.Aliases.Contains(a));
            if (o is not null && o.ValueType != typeof(bool) && o.Arity.MaximumNumberOfValues > 0) i++;
        }
        return -1;
    }
}

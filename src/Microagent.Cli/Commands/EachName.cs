using System.CommandLine;
using Microagent.Errors;

namespace Microagent.Cli.Commands;

/// <summary>One name's outcome in a verb given several (<c>delete a b c</c>, <c>halt a b</c>, <c>kill a b</c>).</summary>
/// <param name="Name">The workspace.</param>
/// <param name="Ok">It succeeded.</param>
/// <param name="State">Its state afterwards (halt, kill).</param>
/// <param name="Detail">Why it is in that state, or what delete did.</param>
/// <param name="Error">Why it failed.</param>
internal sealed record NameOutcomeJson(string Name, bool Ok, string? State, string? Detail, NameErrorJson? Error);

/// <summary>The error of one name: the fields of the CLI's error document.</summary>
internal sealed record NameErrorJson(string Kind, string Message, string? Remediation, bool Retryable);

/// <summary>The <c>--json</c> document of a verb given several names: each name's outcome, in order, and how many failed.</summary>
internal sealed record NameOutcomesJson(IReadOnlyList<NameOutcomeJson> Results, int Failed);

/// <summary>
/// Runs a per-name library call for each name in order. One name: exactly the single-name verb (its document, its error). Several:
/// every name is tried, each outcome is reported, and the exit code is that of the first failure (0 when none failed).
/// </summary>
internal static class EachName
{
    public static async Task<int> RunAsync<T>(ParseResult r, IReadOnlyList<string> names, Func<string, Task<T>> operation,
        Func<T, NameOutcomeJson> outcome, Action<T> print, Action<T> printJson, Func<T, int> exitCode)
    {
        bool json = r.GetValue(GlobalOptions.Json);
        if (names.Count == 1)
        {
            var single = await operation(names[0]);
            if (json) printJson(single); else print(single);
            return exitCode(single);
        }
        var results = new List<NameOutcomeJson>();
        int code = 0;
        foreach (string name in names)
        {
            try
            {
                var value = await operation(name);
                results.Add(outcome(value));
                if (!json) print(value);
                if (code == 0) code = exitCode(value);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                var error = ErrorMapping.FromException(e).ToException();
                results.Add(new NameOutcomeJson(name, false, null, null, new NameErrorJson(error.Kind.WireName(), error.Message, error.Remediation, error.Retryable)));
                if (!json) Console.Error.WriteLine($"{name}: error: {error.Message}{(error.Remediation is { } h ? $"\n  hint: {h}" : "")}");
                if (code == 0) code = error.Kind.ExitCode();
            }
        }
        if (json) Cli.WriteJson(new NameOutcomesJson(results, results.Count(x => !x.Ok)), Cli.Json.NameOutcomesJson);
        return code;
    }
}

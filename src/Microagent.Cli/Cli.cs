using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microagent.Errors;

namespace Microagent.Cli;

/// <summary>Options every verb accepts.</summary>
internal static class GlobalOptions
{
    public static readonly Option<bool> Json = new("--json")
    {
        Description = "Print one JSON document on stdout (results, or a structured error) instead of human output",
        Recursive = true,
    };

    public static readonly Option<string?> StateDir = new("--state-dir")
    {
        Description = $"State directory (default: ${StatePaths.EnvironmentVariable} or ~/.microagent)",
        Recursive = true,
    };

    public static StatePaths Paths(ParseResult r) => new(r.GetValue(StateDir));
}

/// <summary>Parsing, error rendering and exit codes shared by all verbs (DESIGN.md §8).</summary>
internal static class Cli
{
    public const int ExitUsage = 2;
    public const int ExitInterrupted = 130;

    // Output goes to a terminal or a JSON parser, never into HTML: keep quotes and backticks readable.
    public static readonly JsonSerializerOptions JsonOptions = new(JsonSerializerDefaults.Web)
    {
        WriteIndented = true,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    public static readonly JsonSerializerOptions JsonLineOptions = new(JsonOptions) { WriteIndented = false };

    public static async Task<int> InvokeAsync(RootCommand root, string[] args)
    {
        var parse = root.Parse(args);
        bool json = parse.GetValue(GlobalOptions.Json);
        if (parse.Errors.Count > 0)
        {
            string message = string.Join("; ", parse.Errors.Select(e => e.Message));
            WriteError(json, MicroagentException.Invalid(message, $"see `microagent {parse.CommandResult.Command.Name} --help`".Replace("microagent microagent", "microagent")));
            return ExitUsage;
        }
        var config = new InvocationConfiguration { ProcessTerminationTimeout = TimeSpan.FromSeconds(15), EnableDefaultExceptionHandler = false };
        try
        {
            return await parse.InvokeAsync(config);
        }
        catch (MicroagentException e)
        {
            WriteError(json, e);
            return e.Kind.ExitCode();
        }
        catch (OperationCanceledException)
        {
            WriteError(json, new MicroagentException(ErrorKind.Transient, "interrupted", "the workspace was torn down; nothing was kept"));
            return ExitInterrupted;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.Net.Sockets.SocketException
                                       or System.Text.Json.JsonException or InvalidOperationException or ArgumentException)
        {
            // An unexpected failure still gets a typed error object and a documented exit code, never a stack trace.
            var error = e switch
            {
                UnauthorizedAccessException => new MicroagentException(ErrorKind.PolicyDenied, e.Message, "check the permissions of the path"),
                System.Net.Sockets.SocketException or IOException => new MicroagentException(ErrorKind.Transient, e.Message, "retry; if it persists, run `microagent doctor`"),
                _ => MicroagentException.Permanent(e.Message, "run `microagent doctor`; this may be a bug"),
            };
            WriteError(json, error);
            return error.Kind.ExitCode();
        }
    }

    public static void WriteError(bool json, MicroagentException e)
    {
        if (json)
        {
            var doc = new JsonObject
            {
                ["error"] = new JsonObject
                {
                    ["kind"] = e.Kind.WireName(),
                    ["message"] = e.Message,
                    ["remediation"] = e.Remediation,
                    ["retryable"] = e.Retryable,
                },
            };
            Console.Out.WriteLine(doc.ToJsonString(JsonOptions));
            return;
        }
        Console.Error.WriteLine($"error: {e.Message}");
        if (!string.IsNullOrEmpty(e.Remediation))
            foreach (var (line, i) in e.Remediation.Split('\n').Select((l, i) => (l, i)))
                Console.Error.WriteLine(i == 0 ? $"  hint: {line}" : $"        {line}");
    }

    public static void WriteJson(object value) => Console.Out.WriteLine(JsonSerializer.Serialize(value, JsonOptions));

    /// <summary>Phase lines on stderr, only when stderr is a terminal and no JSON was asked for.</summary>
    public static IProgress<string>? Progress(ParseResult r) =>
        r.GetValue(GlobalOptions.Json) || Console.IsErrorRedirected || Environment.GetEnvironmentVariable("MICROAGENT_QUIET") == "1"
            ? null
            : new Progress<string>(m => Console.Error.WriteLine($"\u001b[2m· {m}\u001b[0m"));
}

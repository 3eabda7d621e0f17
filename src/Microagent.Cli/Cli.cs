using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microagent.Cli.Commands;
using System.Text.Json.Serialization.Metadata;
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

/// <summary>Parsing, error rendering and exit codes shared by all verbs (docs/ARCHITECTURE.md "Errors").</summary>
internal static class Cli
{
    public const int ExitUsage = 2;
    public const int ExitInterrupted = 130;

    /// <summary>Type information of every <c>--json</c> document, indented.</summary>
    public static readonly CliJsonContext Json = new(CliJsonContext.CreateOptions(indented: true));

    /// <summary>The same, one document per line (<c>events --follow --json</c>).</summary>
    public static readonly CliJsonContext JsonLine = new(CliJsonContext.CreateOptions(indented: false));

    public static async Task<int> InvokeAsync(RootCommand root, string[] args)
    {
        Parsers.Install(root);
        Usage.Install(root);
        var parse = root.Parse(RunCommandLine.Rewrite(root, args));
        bool json = parse.GetValue(GlobalOptions.Json);
        if (parse.Errors.Count > 0 && !Usage.IsHelp(parse))
        {
            WriteError(json, Usage.Error(parse));
            return ExitUsage;
        }
        var config = new InvocationConfiguration { ProcessTerminationTimeout = TimeSpan.FromSeconds(15), EnableDefaultExceptionHandler = false };
        try
        {
            return await parse.InvokeAsync(config);
        }
        catch (OperationCanceledException)
        {
            WriteError(json, Interrupted(parse.CommandResult.Command.Name));
            return ExitInterrupted;
        }
        catch (Exception e)
        {
            // One mapping for every adapter (the MCP server uses it too): a typed error and a documented exit code, never a stack trace.
            // A console timeout keeps its own type: its partial output is part of the error (Render.Error).
            var error = e as Microagent.Workspaces.ConsoleTimeoutException ?? ErrorMapping.FromException(e).ToException();
            WriteError(json, error);
            return error.Kind.ExitCode();
        }
    }

    /// <summary>What an interrupted verb kept: only <c>run</c> tears its workspace down.</summary>
    public static MicroagentException Interrupted(string verb) => verb switch
    {
        "run" => new(ErrorKind.Transient, "interrupted — the workspace was torn down; nothing was kept", "run it again"),
        "exec" => new(ErrorKind.Transient, "interrupted — the command was killed in the guest; the workspace is still running",
            "run the command again with `microagent exec`"),
        "connect" => new(ErrorKind.Transient, "interrupted — the console session was closed (its shell hung up); the workspace is still running",
            "connect again with `microagent connect NAME`"),
        "start" => new(ErrorKind.Transient, "interrupted — the start was abandoned; the workspace was kept, stopped",
            "start it again with `microagent start NAME`"),
        "create" => new(ErrorKind.Transient, "interrupted — the workspace was not created; nothing was kept", "run it again"),
        "pull" => new(ErrorKind.Transient, "interrupted — the pull was abandoned; nothing half-written was kept", "pull it again"),
        "cp" => new(ErrorKind.Transient, "interrupted — the copy was abandoned; the destination may be incomplete", "copy it again"),
        "halt" or "stop" or "kill" or "delete" => new(ErrorKind.Transient, $"interrupted — the {verb} may not have finished",
            "check `microagent status NAME`, then run it again"),
        _ => new(ErrorKind.Transient, "interrupted", "run it again"),
    };

    public static void WriteError(bool json, MicroagentException e) => Render.Error(json, e);

    public static void WriteJson<T>(T value, JsonTypeInfo<T> info) => Console.Out.WriteLine(JsonSerializer.Serialize(value, info));

    /// <summary>Phase lines on stderr, only when stderr is a terminal and no JSON was asked for.</summary>
    public static IProgress<string>? Progress(ParseResult r) =>
        r.GetValue(GlobalOptions.Json) || Console.IsErrorRedirected || Environment.GetEnvironmentVariable("MICROAGENT_QUIET") == "1"
            ? null
            : new Progress<string>(m => Console.Error.WriteLine($"\u001b[2m· {m}\u001b[0m"));
}

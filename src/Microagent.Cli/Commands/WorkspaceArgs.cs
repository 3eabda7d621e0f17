using System.CommandLine;
using System.CommandLine.Parsing;
using Microagent.Errors;

namespace Microagent.Cli.Commands;

/// <summary>Arguments and options shared by the workspace verbs.</summary>
internal static class WorkspaceArgs
{
    public static Argument<string> Name(string description = "Workspace name") => new("name") { Description = description };

    public static Option<int?> Ttl() => new("--ttl") { Description = "Idle lease in seconds: reaped after that long with no exec/cp/connect activity (0 = permanent)" };
    public static Option<string?> Profile() => new("--profile") { Description = "tiny (256 MiB/1 vCPU/512 MiB disk), small (512/2/1024), medium (2048/2/8192), large (4096/4/16384)" };
    public static Option<int?> Memory() => new("--memory") { Description = "Guest memory in MiB (overrides the profile)" };
    public static Option<int?> Cpus() => new("--cpus") { Description = "Virtual CPUs (overrides the profile)" };
    public static Option<string[]> Vsock() => new("--vsock") { Description = "Guest→host TCP mapping PORT=HOST:PORT: guest connections to CID 2 port PORT reach HOST:PORT (repeatable)", AllowMultipleArgumentsPerToken = false };

    /// <summary>Like `run`: an unknown --flag before `--` is a usage error, not part of the guest command.</summary>
    public static void RejectOptionLikeArguments(ParseResult r, string verb)
    {
        foreach (var token in r.Tokens)
        {
            if (token.Type == TokenType.DoubleDash) return;
            if (token.Type == TokenType.Argument && token.Value.Length > 1 && token.Value[0] == '-')
                throw MicroagentException.Invalid($"unrecognized option '{token.Value}'", $"see `microagent {verb} --help`; put the guest command after `--`");
        }
    }
}

using System.CommandLine;
using System.CommandLine.Parsing;
using Microagent.Errors;
using Microagent.Mediation;

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

    public static Option<string?> Mediation() => new("--mediation") { Description = "Mediation channel PORT=HOST:PORT: the agent connects to CID 2 port PORT and the supervisor relays each connection to the host control plane at HOST:PORT (required and fail-closed)" };
    public static Option<bool> MediationOptional() => new("--mediation-optional") { Description = "Make --mediation optional and fail-open (development): an unreachable target is not an error, and a guest connection waits for it" };

    /// <summary>The <c>--mediation</c> channel, or null; <c>--mediation-optional</c> alone is a usage error.</summary>
    public static MediationConfig? MediationFrom(ParseResult r, Option<string?> mediation, Option<bool> optional)
    {
        if (r.GetValue(mediation) is { } text) return MediationConfig.Parse(text, r.GetValue(optional));
        if (r.GetValue(optional)) throw MicroagentException.Invalid("--mediation-optional needs --mediation PORT=HOST:PORT", "example: --mediation 2048=127.0.0.1:9900 --mediation-optional");
        return null;
    }

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

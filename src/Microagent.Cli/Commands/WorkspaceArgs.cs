using System.CommandLine;
using System.CommandLine.Parsing;
using Microagent.Errors;
using Microagent.Mediation;
using Microagent.Workspaces;

namespace Microagent.Cli.Commands;

/// <summary>Arguments and options shared by the workspace verbs.</summary>
internal static class WorkspaceArgs
{
    public static Argument<string> Name(string description = "Workspace name") => new("name") { Description = description };

    public static Option<TimeSpan?> Ttl() => new("--ttl") { Description = Describe(WorkspaceLimits.TtlSeconds, "a duration: seconds, or 90s, 30m, 2h") };

    /// <summary>A duration option's value as the whole seconds the library takes (rounded up: 300ms is 1 s).</summary>
    public static int? Seconds(TimeSpan? t) => t is { } v ? (int)Math.Min(int.MaxValue, Math.Ceiling(v.TotalSeconds)) : null;
    public static Option<string?> Profile() => new("--profile") { Description = "tiny (256 MiB/1 vCPU/512 MiB disk), small (512/2/1024), medium (2048/2/8192), large (4096/4/16384)" };
    public static Option<int?> Memory() => new("--memory") { Description = Describe(WorkspaceLimits.MemoryMiB, "overrides the profile") };
    public static Option<int?> Cpus() => new("--cpus") { Description = Describe(WorkspaceLimits.Cpus, "overrides the profile") };

    /// <summary>Help text of an option from its library limit: description, range, and an optional note.</summary>
    public static string Describe(WorkspaceLimit limit, string? note = null)
    {
        string range = limit.Bounded ? $"{limit.Range}{(limit.Unit.Length > 0 ? " " + limit.Unit : "")}" : "";
        string extra = string.Join("; ", new[] { range, note ?? "" }.Where(x => x.Length > 0));
        return extra.Length == 0 ? limit.Description : $"{limit.Description} ({extra})";
    }
    /// <summary><c>-v/--volume</c>, <c>--disk</c> and <c>--bundle</c>: data disks (the library parses them: <see cref="Volumes.DiskRequest"/>).</summary>
    public static Option<string[]>[] Disks() =>
    [
        new("--volume", "-v") { Description = "Data disk SRC:DST[:ro|rw]: SRC an ext4 image file, a .tar/.tar.gz bundle (read-only unless :rw), or a named volume (`microagent volume create`); host directories are refused (repeatable)", AllowMultipleArgumentsPerToken = false },
        new("--disk") { Description = "ext4 image as NAME=PATH:MOUNT[:ro|rw] (the long form of -v PATH:MOUNT; repeatable)", AllowMultipleArgumentsPerToken = false },
        new("--bundle") { Description = "tar bundle as NAME=PATH:MOUNT[:ro|rw], unpacked once into a cached ext4 image (rw: a copy-on-write layer per workspace; repeatable)", AllowMultipleArgumentsPerToken = false },
    ];

    /// <summary>The data disks given with the <see cref="Disks"/> options, in the order -v, --disk, --bundle.</summary>
    public static IReadOnlyList<Volumes.DiskRequest> DisksFrom(ParseResult r, Option<string[]>[] options) =>
    [
        .. (r.GetValue(options[0]) ?? []).Select(Volumes.DiskRequest.ParseVolume),
        .. (r.GetValue(options[1]) ?? []).Select(t => Volumes.DiskRequest.ParseNamed(Volumes.DiskKinds.Image, t)),
        .. (r.GetValue(options[2]) ?? []).Select(t => Volumes.DiskRequest.ParseNamed(Volumes.DiskKinds.Bundle, t)),
    ];

    public static Option<string[]> Vsock() => new("--vsock") { Description = "Guest→host TCP mapping PORT=HOST:PORT: guest connections to CID 2 port PORT reach HOST:PORT (repeatable)", AllowMultipleArgumentsPerToken = false };

    public static Option<string?> Mediation() => new("--mediation") { Description = "Mediation channel PORT=HOST:PORT: the agent connects to CID 2 port PORT and the supervisor relays each connection to the host control plane at HOST:PORT (required and fail-closed)" };
    public static Option<bool> MediationOptional() => new("--mediation-optional") { Description = "Make --mediation optional and fail-open (development): an unreachable target is not an error, and a guest connection waits for it" };

    /// <summary><c>--cold</c> on run and start: no warm-start template is restored or made (docs/ARCHITECTURE.md "Warm start").</summary>
    public static Option<bool> Cold() => new("--cold") { Description = "Boot cold: do not restore (or make) the warm-start template of this image and size, even on a first start" };

    /// <summary>The <c>--mediation</c> channel, or null; <c>--mediation-optional</c> alone is a usage error.</summary>
    public static MediationConfig? MediationFrom(ParseResult r, Option<string?> mediation, Option<bool> optional)
    {
        if (r.GetValue(mediation) is { } text) return MediationConfig.Parse(text, r.GetValue(optional));
        if (r.GetValue(optional)) throw MicroagentException.Invalid("--mediation-optional needs --mediation PORT=HOST:PORT", "example: --mediation 2048=127.0.0.1:9900 --mediation-optional");
        return null;
    }

    /// <summary>
    /// The command argument of run and exec swallows anything; an unknown <c>--flag</c> before <c>--</c> is a typo for an option,
    /// not the guest command, and must be a usage error (with "did you mean") rather than a guest exec of "--flag".
    /// </summary>
    public static void RejectOptionLikeArguments(ParseResult r, string verb)
    {
        foreach (var token in r.Tokens)
        {
            if (token.Type == TokenType.DoubleDash) return;
            if (token.Type == TokenType.Argument && token.Value.Length > 1 && token.Value[0] == '-' && r.GetResult(r.CommandResult.Command.Arguments[^1]) is { } arg
                && arg.Tokens.Contains(token))
            {
                string typed = token.Value.Split('=')[0];
                var close = Usage.Closest(typed, r.CommandResult.Command.Options.Concat(r.RootCommandResult.Command.Options)
                    .Where(o => !o.Hidden).SelectMany(o => o.Aliases.Prepend(o.Name)));
                throw MicroagentException.Invalid($"unknown option '{typed}' for `microagent {verb}`",
                    (close.Count > 0 ? $"did you mean {string.Join(" or ", close.Select(c => $"`{c}`"))}? " : $"see `microagent {verb} --help`; ")
                    + $"a guest command goes after `--` (microagent {verb} ... -- CMD ARGS...)");
            }
        }
    }
}

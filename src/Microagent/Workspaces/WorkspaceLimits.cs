using System.Globalization;
using Microagent.Mediation;

namespace Microagent.Workspaces;

/// <summary>
/// One bounded input of the workspace verbs: its field name in the library's spelling (the MCP input and JSON name),
/// its inclusive range and a one-line description. Front ends read ranges and descriptions from here.
/// </summary>
/// <param name="Field">Field name, e.g. <c>memory_mib</c>.</param>
/// <param name="Min">Smallest accepted value.</param>
/// <param name="Max">Largest accepted value (<see cref="long.MaxValue"/> or <see cref="int.MaxValue"/>: no upper bound).</param>
/// <param name="Unit">Unit for messages (<c>MiB</c>, <c>seconds</c>, <c>milliseconds</c>, <c>bytes</c>), or empty.</param>
/// <param name="Description">One line saying what it is.</param>
public sealed record WorkspaceLimit(string Field, long Min, long Max, string Unit, string Description)
{
    /// <summary>Whether the range has an upper bound.</summary>
    public bool Bounded => Max is not (long.MaxValue or int.MaxValue);

    /// <summary><c>128..65536</c>, or <c>0..</c> when unbounded above.</summary>
    public string Range => Bounded ? $"{Min}..{Max}" : $"{Min}..";

    /// <summary>What to do about a value out of range, without naming any front end's option.</summary>
    public string Remediation => Bounded ? $"use {Range}{UnitSuffix}" : $"use {Min} or more{UnitSuffix}";

    /// <summary>Whether <paramref name="value"/> is accepted.</summary>
    public bool Contains(long value) => value >= Min && value <= Max;

    /// <summary>Throws <see cref="WorkspaceSpecException"/> (kind <c>invalid</c>, <see cref="Errors.MicroagentException.Field"/> set) unless <paramref name="value"/> is in range.</summary>
    public void Check(long value)
    {
        if (!Contains(value))
            throw new WorkspaceSpecException($"{Field} {value.ToString(CultureInfo.InvariantCulture)} is out of range ({(Bounded ? Range : $"at least {Min}")})", Remediation)
            { Field = Field };
    }

    private string UnitSuffix => Unit.Length == 0 ? "" : " " + Unit;
}

/// <summary>
/// The bounds of every workspace input (create, start, run, exec) in one place; <see cref="WorkspaceValidator"/> enforces
/// them, and the CLI help and MCP input schemas read them.
/// </summary>
public static class WorkspaceLimits
{
    /// <summary>Captured (single-mode) output is capped per stream by default so a result fits one protocol frame.</summary>
    public const long SingleModeOutputCap = 4 * 1024 * 1024;

    /// <summary>The console shell of a workspace created without one.</summary>
    public const string DefaultShell = "/bin/sh";

    /// <summary>Guest memory.</summary>
    public static WorkspaceLimit MemoryMiB { get; } = new("memory_mib", 128, 65536, "MiB", "Guest memory in MiB");
    /// <summary>Virtual CPUs.</summary>
    public static WorkspaceLimit Cpus { get; } = new("cpus", 1, 64, "", "Virtual CPUs");
    /// <summary>Virtual disk size (never below the image baseline).</summary>
    public static WorkspaceLimit SizeMiB { get; } = new("size_mib", 64, 1024 * 1024, "MiB", "Virtual disk size in MiB, never below the image baseline");
    /// <summary>Idle lease.</summary>
    public static WorkspaceLimit TtlSeconds { get; } = new("ttl_seconds", 0, int.MaxValue, "seconds",
        "Idle lease in seconds: reaped after that long with no exec/cp/connect activity (0 = permanent)");
    /// <summary>Command timeout.</summary>
    public static WorkspaceLimit TimeoutMs { get; } = new("timeout_ms", 1, long.MaxValue, "milliseconds", "Kill the command after this many milliseconds (exit 124)");
    /// <summary>Per-stream output cap.</summary>
    public static WorkspaceLimit MaxOutputBytes { get; } = new("max_output_bytes", 0, long.MaxValue, "bytes",
        $"Per-stream output cap in bytes (default {SingleModeOutputCap / (1024 * 1024)} MiB when captured, unlimited when streamed)");

    /// <summary>The window of a stats sample when none is given (docs/ARCHITECTURE.md "Stats").</summary>
    public const int DefaultStatsIntervalMs = 2000;
    /// <summary>The window of a stats sample (and the period of a followed one).</summary>
    public static WorkspaceLimit StatsIntervalMs { get; } = new("interval_ms", 100, 3_600_000, "milliseconds",
        $"Window of a stats sample in milliseconds: CPU % is the average over it (default {DefaultStatsIntervalMs})");

    /// <summary>Every limit above.</summary>
    public static IReadOnlyList<WorkspaceLimit> All { get; } = [MemoryMiB, Cpus, SizeMiB, TtlSeconds, TimeoutMs, MaxOutputBytes, StatsIntervalMs];
}

/// <summary>
/// The one validator of workspace inputs. Every failure is a <see cref="WorkspaceSpecException"/> (kind <c>invalid</c>)
/// whose message names the library field and whose <see cref="Errors.MicroagentException.Field"/> is set.
/// </summary>
internal static class WorkspaceValidator
{
    /// <summary>Sizes and lease of a create (after the profile was applied).</summary>
    public static void Create(int memoryMiB, int cpus, int sizeMiB, int ttlSeconds, WorkspaceSpec spec)
    {
        WorkspaceLimits.MemoryMiB.Check(memoryMiB);
        WorkspaceLimits.Cpus.Check(cpus);
        WorkspaceLimits.TtlSeconds.Check(ttlSeconds);
        WorkspaceLimits.SizeMiB.Check(sizeMiB);
        Env(spec.Env);
        Mediation(spec.Mediation, spec.Vsock);
        if (spec.Shell is { } shell && (!shell.StartsWith('/') || shell.Length > 4096 || shell.Any(char.IsWhiteSpace)))
            throw new WorkspaceSpecException($"shell '{shell}' is not an absolute guest path", $"give a path such as /bin/bash (default {WorkspaceLimits.DefaultShell})") { Field = "shell" };
    }

    /// <summary>What one boot uses.</summary>
    public static void Boot(int memoryMiB, int cpus, int ttlSeconds, MediationConfig? mediation, IReadOnlyList<VsockMapping> vsock)
    {
        WorkspaceLimits.MemoryMiB.Check(memoryMiB);
        WorkspaceLimits.Cpus.Check(cpus);
        WorkspaceLimits.TtlSeconds.Check(ttlSeconds);
        Mediation(mediation, vsock);
    }

    /// <summary>A halt's or kill's reason: one line, at most 500 characters.</summary>
    public static void Reason(string? reason)
    {
        if (reason is null) return;
        if (reason.Length > 500 || reason.Any(char.IsControl))
            throw new WorkspaceSpecException("the reason must be one line of at most 500 characters", "shorten it; it is recorded in the event history") { Field = "reason" };
    }

    /// <summary>A one-shot run.</summary>
    public static void Run(RunOptions options)
    {
        WorkspaceLimits.MemoryMiB.Check(options.MemoryMiB);
        WorkspaceLimits.Cpus.Check(options.Cpus);
        Command(options.Env, options.Timeout, options.MaxOutputBytes);
        (options.Network ?? new Networking.NetworkSpec()).Resolve();
    }

    /// <summary>An exec in a running workspace.</summary>
    public static void Exec(ExecOptions options)
    {
        if (options.Command.Count == 0 || string.IsNullOrEmpty(options.Command[0]))
            throw new WorkspaceSpecException("no command given", "give the program and its arguments (no implied shell)") { Field = "command" };
        Command(options.Env, options.Timeout, options.MaxOutputBytes);
    }

    /// <summary>KEY=VALUE entries, no NUL.</summary>
    public static void Env(IEnumerable<string> env)
    {
        foreach (string e in env)
            if (!e.Contains('=') || e.StartsWith('=') || e.Contains('\0'))
                throw new WorkspaceSpecException($"environment entry '{e}' is not KEY=VALUE", "give each entry as KEY=VALUE") { Field = "env" };
    }

    /// <summary>A guest hostname: letters, digits, '-' and '.', at most 63 characters.</summary>
    public static void Hostname(string hostname)
    {
        if (hostname.Length is 0 or > 63 || hostname.Any(c => !(char.IsAsciiLetterOrDigit(c) || c is '-' or '.')))
            throw new WorkspaceSpecException($"hostname '{hostname}' is invalid", "use letters, digits, '-' and '.'; at most 63 characters") { Field = "hostname" };
    }

    /// <summary>The mediation port must not also be a vsock mapping.</summary>
    public static void Mediation(MediationConfig? mediation, IReadOnlyList<VsockMapping> vsock)
    {
        if (mediation is not { Enabled: true }) return;
        _ = mediation.ToMapping();
        if (vsock.Any(v => v.GuestPort == mediation.Port))
            throw new WorkspaceSpecException($"vsock port {mediation.Port} is both a vsock mapping and the mediation port", "use different guest ports") { Field = "vsock" };
    }

    private static void Command(IEnumerable<string> env, TimeSpan? timeout, long? maxOutputBytes)
    {
        Env(env);
        // Every non-positive timeout maps to a value below the minimum of 1 ms (a positive one rounds up to it).
        if (timeout is { } t && t <= TimeSpan.Zero) WorkspaceLimits.TimeoutMs.Check((long)t.TotalMilliseconds);
        if (maxOutputBytes is { } cap) WorkspaceLimits.MaxOutputBytes.Check(cap);
    }
}

using Microagent.Access;
using Microagent.Errors;

namespace Microagent.Mcp;

/// <summary>What the person launching <c>microagent serve mcp</c> decides; the flags map one to one. None is settable from a tool call.</summary>
public sealed record McpLimitOptions
{
    /// <summary><c>--host-root DIR</c>: directories host paths must resolve into; empty = <see cref="WorkingDirectory"/> only.</summary>
    public IReadOnlyList<string> HostRoots { get; init; } = [];
    /// <summary><c>--allow-host-target HOST:PORT|CIDR:PORT</c>: host TCP targets vsock mappings and mediation may use; empty = none.</summary>
    public IReadOnlyList<string> HostTargets { get; init; } = [];
    /// <summary><c>--tools minimal|standard|full</c> (default full).</summary>
    public string Tools { get; init; } = McpLimits.Full;
    /// <summary><c>--allow-tool NAME</c>: added to the set.</summary>
    public IReadOnlyList<string> AllowTools { get; init; } = [];
    /// <summary><c>--deny-tool NAME</c>: removed from the set (wins over allow).</summary>
    public IReadOnlyList<string> DenyTools { get; init; } = [];
    /// <summary><c>--read-only</c>: only tools whose annotation says read-only.</summary>
    public bool ReadOnly { get; init; }
    /// <summary>The server's working directory: the default root, and the base of relative paths.</summary>
    public string WorkingDirectory { get; init; } = Environment.CurrentDirectory;
}

/// <summary>
/// The MCP server's launch-time limits (docs/ARCHITECTURE.md "MCP server: a trust boundary"): host roots
/// (<see cref="HostAccess"/>), allowed host targets (<see cref="HostTargets"/>) and which tools are listed and callable.
/// The server is driven by a model that may be steered by what it reads, so these come only from whoever launches it.
/// </summary>
public sealed class McpLimits
{
    /// <summary>Tool set names.</summary>
    public const string Minimal = "minimal", Standard = "standard", Full = "full";

    /// <summary>The minimal set: one-shot run, the persistent workspace basics, and the two introspection tools.</summary>
    public static readonly IReadOnlyList<string> MinimalTools =
        ["microagent_ping", "microagent_describe", "workspace_run", "workspace_create", "workspace_start", "workspace_exec", "workspace_cp",
            "workspace_status", "workspace_delete"];

    /// <summary>Left out of the standard set: the tools whose job is fetching images or models from the network, and starting a host model runner by itself.</summary>
    public static readonly IReadOnlyList<string> NotStandard = ["images_pull", "model_pull", "model_serve"];

    private const string Launcher = "the person who launches the server decides this (a tool call cannot): ";

    private McpLimits(McpLimitOptions o, HostAccess host, HostTargets targets)
    {
        Options = o;
        Host = host;
        Targets = targets;
    }

    /// <summary>The options these limits were made from.</summary>
    public McpLimitOptions Options { get; }

    /// <summary>Which host paths tools may read and write.</summary>
    public HostAccess Host { get; }

    /// <summary>Which host TCP targets guest connections may be relayed to.</summary>
    public HostTargets Targets { get; }

    /// <summary>Validates and resolves <paramref name="options"/> (roots must exist; targets and the tool set must parse).</summary>
    public static McpLimits Create(McpLimitOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Tools is not (Minimal or Standard or Full))
            throw MicroagentException.Invalid($"--tools '{options.Tools}' is not minimal, standard or full", "see `microagent serve mcp --help`");
        var roots = options.HostRoots.Count > 0 ? options.HostRoots : [options.WorkingDirectory];
        var host = HostAccess.Create(roots, options.WorkingDirectory,
            Launcher + "restart it with `microagent serve mcp --host-root DIR` (repeatable) to allow another directory");
        var targets = Access.HostTargets.Parse(options.HostTargets,
            Launcher + "restart it with `microagent serve mcp --allow-host-target HOST:PORT` (or CIDR:PORT; repeatable) to allow a target");
        return new McpLimits(options, host, targets);
    }

    /// <summary>Checks that every tool named in the allow and deny lists exists in <paramref name="toolNames"/>.</summary>
    public void CheckToolNames(IReadOnlyCollection<string> toolNames)
    {
        foreach (string name in Options.AllowTools.Concat(Options.DenyTools))
            if (!toolNames.Contains(name))
                throw MicroagentException.Invalid($"no tool named '{name}'", "tools: " + string.Join(", ", toolNames));
    }

    /// <summary>Why <paramref name="tool"/> is neither listed nor callable, or null when it is offered.</summary>
    public string? Withheld(ToolDefinition tool)
    {
        if (Options.DenyTools.Contains(tool.Name))
            return $"tool {tool.Name} is denied on this server (--deny-tool {tool.Name})";
        bool inSet = Options.Tools switch
        {
            Minimal => MinimalTools.Contains(tool.Name),
            Standard => !NotStandard.Contains(tool.Name),
            _ => true,
        } || Options.AllowTools.Contains(tool.Name);
        if (!inSet) return $"tool {tool.Name} is not in this server's tool set (--tools {Options.Tools})";
        if (Options.ReadOnly && !tool.Hints.ReadOnly) return $"tool {tool.Name} changes state and this server is read-only (--read-only)";
        return null;
    }

    /// <summary>The remediation for a withheld tool.</summary>
    public static string WithheldRemediation(string tool) =>
        Launcher + $"restart it with `microagent serve mcp --allow-tool {tool}` (or --tools full), without --deny-tool {tool} or --read-only";

    /// <summary>The limits in force, for <c>microagent_describe</c>.</summary>
    public LimitsInfo Describe(string auditFile) => new([.. Host.Roots], [.. Targets.Rules.Select(r => r.ToString())], Options.Tools,
        [.. Options.AllowTools], [.. Options.DenyTools], Options.ReadOnly, auditFile);
}

/// <summary>The limits in force, as <c>microagent_describe</c> reports them.</summary>
/// <param name="HostRoots">Real paths every host path must resolve into.</param>
/// <param name="AllowedHostTargets">HOST:PORT / CIDR:PORT targets vsock mappings and mediation may use (empty: none).</param>
/// <param name="Tools">The tool set: minimal, standard or full.</param>
/// <param name="AllowedTools">Tools added to the set.</param>
/// <param name="DeniedTools">Tools removed.</param>
/// <param name="ReadOnly">Only read-only tools are offered.</param>
/// <param name="AuditFile">Where host-touching and denied calls are recorded.</param>
public sealed record LimitsInfo(IReadOnlyList<string> HostRoots, IReadOnlyList<string> AllowedHostTargets, string Tools,
    IReadOnlyList<string> AllowedTools, IReadOnlyList<string> DeniedTools, bool ReadOnly, string AuditFile);

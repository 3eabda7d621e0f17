using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization.Metadata;
using Microagent.Diagnostics;
using Microagent.Errors;
using Microagent.Workspaces;

namespace Microagent.Mcp;

/// <summary>Every tool the server offers. Names and shapes are stable and documented in README.md.</summary>
public sealed partial class ToolCatalog
{
    private readonly Dictionary<string, ToolDefinition> _tools = new(StringComparer.Ordinal);
    private readonly StatePaths _paths;

    private ToolCatalog(StatePaths paths, McpLimits limits)
    {
        _paths = paths;
        Limits = limits;
    }

    /// <summary>The launch-time limits every tool obeys.</summary>
    public McpLimits Limits { get; }

    /// <summary>The tools offered under <see cref="Limits"/> (listed and callable), in registration order.</summary>
    public IReadOnlyList<ToolDefinition> Tools => [.. _tools.Values.Where(t => Limits.Withheld(t) is null)];

    /// <summary>Every tool, offered or not.</summary>
    public IReadOnlyList<ToolDefinition> AllTools => [.. _tools.Values];

    /// <summary>The tool named <paramref name="name"/> (offered or withheld; see <see cref="McpLimits.Withheld"/>), or null.</summary>
    public ToolDefinition? Find(string name) => _tools.GetValueOrDefault(name);

    /// <summary>
    /// All tools, bound to one state directory, under <paramref name="limits"/> (default: the working directory as the only
    /// host root, no host targets, every tool).
    /// </summary>
    public static ToolCatalog Create(StatePaths paths, McpLimits? limits = null)
    {
        var c = new ToolCatalog(paths, limits ?? McpLimits.Create(new McpLimitOptions()));
        c.AddCoreTools();
        c.AddWorkspaceTools();
        c.AddLifecycleTools();
        c.AddImageTools();
        c.AddVolumeTools();
        c.AddParityTools();
        c.AddNetworkTools();
        c.AddSnapshotTools();
        c.AddStatsTools();
        c.AddContainmentTools();
        c.AddModelPolicyTools();
        c.AddTemplateTools();
        c.AddConsoleTools();
        c.AddModelTools();
        c.Limits.CheckToolNames(c._tools.Keys);
        return c;
    }

    /// <summary>Registers a tool whose result is a <typeparamref name="T"/>, serialized (and its schema exported) through <paramref name="result"/>.</summary>
    private void Add<T>(string name, string title, ToolHints hints, string description, JsonObject schema, JsonTypeInfo<T> result,
        Func<ToolCall, Task<T>> handler) =>
        _tools.Add(name, new ToolDefinition(name, title, description, hints, schema, Schema.Of(result),
            async call => JsonSerializer.SerializeToNode(await handler(call).ConfigureAwait(false), result)));

    private void AddCoreTools()
    {
        Add("microagent_ping", "Ping", ToolHints.Query, "Liveness check of the MCP server. Returns the server version.",
            Schema.Object([]), McpJson.Context.PingResult,
            _ => Task.FromResult(new PingResult(true, McpServerHost.Version)));

        Add("microagent_describe", "Describe microagent", ToolHints.Query,
            "Capability manifest: version, backend, accelerator, every operation offered with its input and output schemas and hints, the resource " +
            "templates, and the limits this server was launched with (host roots, allowed host targets, tool set, read-only, audit file).",
            Schema.Object([]), McpJson.Context.DescribeResult,
            async call =>
            {
                var report = await new Doctor(_paths).RunAsync(call.Cancellation).ConfigureAwait(false);
                return new DescribeResult(McpServerHost.ServerName, McpServerHost.Version, Microagent.Protocol.ProtocolInfo.Version, "qemu",
                    report.Accelerator is { } a ? a.Accelerator.ToString().ToLowerInvariant() : null, report.Accelerator?.Reason, report.Healthy,
                    [.. Tools.Select(t => new OperationInfo(t.Name, t.Title, t.Description, t.Hints, (JsonObject)t.InputSchema.DeepClone(), (JsonObject)t.OutputSchema.DeepClone()))],
                    [.. WorkspaceResources.Templates.Select(r => new ResourceTemplateInfo(r.UriTemplate, r.Name, r.MimeType!, r.Description!))],
                    Limits.Describe(new McpAudit(_paths).FilePath));
            });

        Add("doctor_check", "Check the host", ToolHints.Query,
            "Check the host: QEMU, accelerator (chosen by a real probe boot) and why, kernel and its hash, guest agent, image tools, state directory.",
            Schema.Object([]), McpJson.Context.DoctorResult,
            async call => DoctorResult.From(await new Doctor(_paths).RunAsync(call.Cancellation).ConfigureAwait(false)));
    }

    /// <summary>argv from either <c>argv</c> (array, no shell) or <c>command</c> (a string run with <c>sh -c</c>).</summary>
    internal static string[] Argv(ToolCall call, string tool)
    {
        string[] argv = call.Strings("argv");
        string? command = call.String("command");
        if (argv.Length > 0 && command is not null)
            throw new MicroagentException(ErrorKind.Invalid, $"{tool}: give either 'argv' or 'command', not both") { Field = "command" };
        if (command is not null) return ["/bin/sh", "-c", command];
        return argv.Length > 0 ? argv
            : throw new MicroagentException(ErrorKind.Invalid, $"{tool}: 'argv' (array) or 'command' (string) is required") { Field = "argv" };
    }

    internal static string[] Env(ToolCall call) => call.StringMap("env").Select(kv => $"{kv.Key}={kv.Value}").ToArray();

    internal static JsonObject ExecInputProperties() => new()
    {
        ["argv"] = Schema.Strings("Program and arguments, executed directly (no shell).", minItems: 1),
        ["command"] = Schema.String("A shell command line, run with /bin/sh -c (alternative to argv)."),
        ["env"] = Schema.StringMap("Environment variables to set."),
        ["cwd"] = Schema.String("Working directory in the guest."),
        ["user"] = Schema.String("Guest user: name, uid or uid:gid."),
        ["stdin"] = Schema.String("Text fed to the command's stdin."),
        ["timeout_ms"] = Schema.Integer("Kill the command after this many milliseconds (exit 124).", 1),
        ["max_output_bytes"] = Schema.Integer("Per-stream cap on returned output; excess is dropped and flagged.", 0, MaxOutputBytes),
    };

    /// <summary>Largest per-stream output a call returns.</summary>
    internal const long MaxOutputBytes = Runner.SingleModeOutputCap;

    private static Stream? Stdin(ToolCall call) => call.String("stdin") is { } s ? new MemoryStream(Encoding.UTF8.GetBytes(s)) : null;

    private void AddWorkspaceTools()
    {
        var runProps = ExecInputProperties();
        runProps["image"] = Schema.String("Image reference (default: the embedded busybox image).");
        runProps["memory_mib"] = Schema.Integer("Guest memory in MiB.", WorkspaceLimits.MemoryMiB);
        runProps["cpus"] = Schema.Integer("Virtual CPUs.", WorkspaceLimits.Cpus);
        runProps["volumes"] = VolumesSchema();
        runProps["cold"] = Schema.Boolean("Boot cold instead of restoring the warm-start template of this image and sizes.");
        AddNetworkProperties(runProps);
        AddPlatformProperties(runProps);
        AddModelProperties(runProps);
        Add("workspace_run", "Run a command in a throwaway VM", new ToolHints(ReadOnly: false, Destructive: false, Idempotent: false, OpenWorld: true),
            "One-shot: boot a brand-new workspace VM, run one command, return its exit code and output, throw the VM away. A non-zero exit is a result, " +
            "not an error. Reports boot phases, and the command's output as it comes, as progress. Cancelling tears the VM down.",
            Schema.Object(runProps), McpJson.Context.RunOutput,
            async call =>
            {
                string[] argv = Argv(call, "workspace_run");
                call.Progress.Report("booting a fresh workspace");
                long? maxOut = call.Integer("max_output_bytes", 0, MaxOutputBytes);
                bool stream = call.ProgressRequested && maxOut != 0; // the guest reads a cap of 0 as "none" when streaming
                using var stdout = stream ? new OutputProgress("stdout", call.Progress) : null;
                using var stderr = stream ? new OutputProgress("stderr", call.Progress) : null;
                var result = await new Runner(_paths).RunAsync(new RunOptions
                {
                    Command = argv,
                    Image = Image(call),
                    MemoryMiB = (int)(call.Integer("memory_mib", WorkspaceLimits.MemoryMiB) ?? 256),
                    Cpus = (int)(call.Integer("cpus", WorkspaceLimits.Cpus) ?? 1),
                    Timeout = call.Integer("timeout_ms", 1) is { } ms ? TimeSpan.FromMilliseconds(ms) : null,
                    Env = Env(call),
                    Cwd = call.String("cwd"),
                    User = call.String("user"),
                    Disks = VolumeArgs(call),
                    MaxOutputBytes = stdout is null ? maxOut : maxOut ?? MaxOutputBytes,
                    Stdin = Stdin(call),
                    Network = Network(call),
                    Arch = call.String("arch"),
                    Backend = call.String("backend"),
                    Model = await ModelArgsAsync(call).ConfigureAwait(false),
                    Stdout = stdout,
                    Stderr = stderr,
                    Progress = call.Progress,
                    Cold = call.Boolean("cold"),
                }, call.Cancellation).ConfigureAwait(false);
                return RunOutput.From(result, stdout?.Bytes, stderr?.Bytes);
            });
    }
}

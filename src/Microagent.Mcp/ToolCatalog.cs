using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microagent.Diagnostics;
using Microagent.Errors;
using Microagent.Workspaces;

namespace Microagent.Mcp;

/// <summary>Every tool the server offers. Names and shapes are stable and documented in README.md.</summary>
public sealed partial class ToolCatalog
{
    private readonly Dictionary<string, ToolDefinition> _tools = new(StringComparer.Ordinal);
    private readonly StatePaths _paths;

    private ToolCatalog(StatePaths paths) => _paths = paths;

    /// <summary>The tools in registration order.</summary>
    public IReadOnlyList<ToolDefinition> Tools => [.. _tools.Values];

    /// <summary>The tool named <paramref name="name"/>, or null.</summary>
    public ToolDefinition? Find(string name) => _tools.GetValueOrDefault(name);

    /// <summary>All tools, bound to one state directory.</summary>
    public static ToolCatalog Create(StatePaths paths)
    {
        var c = new ToolCatalog(paths);
        c.AddCoreTools();
        c.AddWorkspaceTools();
        c.AddLifecycleTools();
        c.AddImageTools();
        return c;
    }

    private void Add(string name, string description, JsonObject schema, ToolHandler handler) =>
        _tools.Add(name, new ToolDefinition(name, description, schema, handler));

    private void AddCoreTools()
    {
        Add("microagent.ping", "Liveness check of the MCP server. Returns the server version.",
            Schema.Object([]),
            _ => Task.FromResult<JsonNode?>(new JsonObject { ["pong"] = true, ["version"] = McpServerHost.Version }));

        Add("microagent.describe", "Capability manifest: version, backend, accelerator, and every operation with its input schema.",
            Schema.Object([]),
            async call =>
            {
                var report = await new Doctor(_paths).RunAsync(call.Cancellation).ConfigureAwait(false);
                var ops = new JsonArray(Tools.Select(t => (JsonNode)new JsonObject
                {
                    ["name"] = t.Name,
                    ["description"] = t.Description,
                    ["input_schema"] = t.InputSchema.DeepClone(),
                }).ToArray());
                return new JsonObject
                {
                    ["name"] = McpServerHost.ServerName,
                    ["version"] = McpServerHost.Version,
                    ["protocol_version"] = Microagent.Protocol.ProtocolInfo.Version,
                    ["backend"] = "qemu",
                    ["accelerator"] = report.Accelerator is { } a ? a.Accelerator.ToString().ToLowerInvariant() : null,
                    ["accelerator_reason"] = report.Accelerator?.Reason,
                    ["healthy"] = report.Healthy,
                    ["operations"] = ops,
                };
            });

        Add("doctor.check", "Check the host: QEMU, accelerator (chosen by a real probe boot) and why, kernel and its hash, guest agent, image tools, state directory.",
            Schema.Object([]),
            async call =>
            {
                var report = await new Doctor(_paths).RunAsync(call.Cancellation).ConfigureAwait(false);
                return new JsonObject
                {
                    ["healthy"] = report.Healthy,
                    ["state_dir"] = report.StateDir,
                    ["accelerator"] = report.Accelerator is { } a
                        ? new JsonObject { ["name"] = a.Accelerator.ToString().ToLowerInvariant(), ["machine"] = a.MachineType, ["reason"] = a.Reason, ["probed"] = a.Probed }
                        : null,
                    ["checks"] = new JsonArray(report.Checks.Select(ch => (JsonNode)new JsonObject
                    {
                        ["name"] = ch.Name,
                        ["status"] = ch.Status.ToString().ToLowerInvariant(),
                        ["detail"] = ch.Detail,
                        ["remediation"] = ch.Remediation,
                    }).ToArray()),
                };
            });
    }

    /// <summary>argv from either <c>argv</c> (array, no shell) or <c>command</c> (a string run with <c>sh -c</c>).</summary>
    internal static string[] Argv(ToolCall call, string tool)
    {
        string[] argv = call.Strings("argv");
        string? command = call.String("command");
        if (argv.Length > 0 && command is not null)
            throw MicroagentException.Invalid($"{tool}: give either 'argv' or 'command', not both");
        if (command is not null) return ["/bin/sh", "-c", command];
        return argv.Length > 0 ? argv : throw MicroagentException.Invalid($"{tool}: 'argv' (array) or 'command' (string) is required");
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
        ["max_output_bytes"] = Schema.Integer("Per-stream cap on returned output; excess is dropped and flagged.", 0, 4 * 1024 * 1024),
    };

    internal static JsonObject ExecResultJson(string status, int exitCode, int? signal, byte[]? stdout, byte[]? stderr,
        bool stdoutTruncated, bool stderrTruncated, string? error) => new()
    {
        ["status"] = status,
        ["exit_code"] = exitCode,
        ["signal"] = signal,
        ["stdout"] = stdout is null ? "" : Encoding.UTF8.GetString(stdout),
        ["stderr"] = stderr is null ? "" : Encoding.UTF8.GetString(stderr),
        ["stdout_truncated"] = stdoutTruncated,
        ["stderr_truncated"] = stderrTruncated,
        ["error"] = error,
    };

    private void AddWorkspaceTools()
    {
        var runProps = ExecInputProperties();
        runProps["image"] = Schema.String("Image reference (default: the embedded busybox image).");
        runProps["memory_mib"] = Schema.Integer("Guest memory in MiB.", 128, 65536);
        runProps["cpus"] = Schema.Integer("Virtual CPUs.", 1, 64);
        Add("workspace.run",
            "One-shot: boot a brand-new workspace VM, run one command, return its exit code and output, throw the VM away. A non-zero exit is a result, not an error.",
            Schema.Object(runProps),
            async call =>
            {
                string[] argv = Argv(call, "workspace.run");
                call.Progress.Report("booting a fresh workspace");
                long? maxOut = call.Integer("max_output_bytes", 0, 4 * 1024 * 1024);
                string? stdin = call.String("stdin");
                var result = await new Runner(_paths).RunAsync(new RunOptions
                {
                    Command = argv,
                    Image = call.String("image"),
                    MemoryMiB = (int)(call.Integer("memory_mib", 128, 65536) ?? 256),
                    Cpus = (int)(call.Integer("cpus", 1, 64) ?? 1),
                    Timeout = call.Integer("timeout_ms", 1) is { } ms ? TimeSpan.FromMilliseconds(ms) : null,
                    Env = Env(call),
                    Cwd = call.String("cwd"),
                    User = call.String("user"),
                    MaxOutputBytes = maxOut,
                    Stdin = stdin is null ? null : new MemoryStream(Encoding.UTF8.GetBytes(stdin)),
                    Progress = call.Progress,
                }, call.Cancellation).ConfigureAwait(false);
                var json = ExecResultJson(result.Status, result.ExitCode, result.Signal, result.Stdout, result.Stderr,
                    result.StdoutTruncated, result.StderrTruncated, result.Error);
                json["workspace"] = result.WorkspaceId;
                json["accelerator"] = result.Accelerator;
                json["timings"] = JsonSerializer.SerializeToNode(result.Timings, McpJson.Options);
                return json;
            });
    }
}

/// <summary>MCP results use snake_case names and enum strings throughout.</summary>
internal static class McpJson
{
    public static readonly JsonSerializerOptions Options = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        Converters = { new System.Text.Json.Serialization.JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) },
    };

    public static JsonNode? Node<T>(T value) => JsonSerializer.SerializeToNode(value, Options);
}

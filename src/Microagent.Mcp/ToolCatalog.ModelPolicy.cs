using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using Microagent.Errors;
using Microagent.Models;

namespace Microagent.Mcp;

/// <summary>
/// model_policy_validate and model_policy_evaluate: the CLI's <c>model policy validate|evaluate</c> through
/// <see cref="ModelPolicyChecks"/> (docs/ARCHITECTURE.md "Model mediation"). A policy <c>file</c> is a host path and must resolve
/// inside a host root of this server (read through the checked descriptor); <c>policy</c> gives the document inline instead.
/// </summary>
public sealed partial class ToolCatalog
{
    private const int MaxPolicyBytes = 1 << 20;

    private static void AddPolicySource(JsonObject props)
    {
        props["file"] = Schema.String("A policy file (YAML or JSON) on the host; it must resolve inside a host root of this server.");
        props["policy"] = Schema.String($"The policy document itself (YAML or JSON, schema {ModelPolicy.SchemaVersion}), instead of file.");
    }

    /// <summary>The policy text and its name from <c>file</c> (host roots checked, noted for the audit) or <c>policy</c>.</summary>
    private (string Text, string Source) PolicySource(ToolCall call)
    {
        string? file = call.String("file"), doc = call.String("policy");
        if ((file is null) == (doc is null))
            throw new MicroagentException(ErrorKind.Invalid, "give either 'file' (a host path) or 'policy' (the document)") { Field = "file" };
        if (doc is not null) return (doc, "policy");
        call.HostPaths.Add(file!);
        using var pinned = Limits.Host.OpenSource(file!, "file");
        using var stream = pinned.OpenRead();
        var buf = new MemoryStream();
        var chunk = new byte[16384];
        for (int n; (n = stream.Read(chunk)) > 0;)
        {
            if (buf.Length + n > MaxPolicyBytes) throw new MicroagentException(ErrorKind.Invalid, $"the policy file is over {MaxPolicyBytes >> 20} MiB") { Field = "file" };
            buf.Write(chunk, 0, n);
        }
        return (Encoding.UTF8.GetString(buf.ToArray()), pinned.RealPath);
    }

    private void AddModelPolicyTools()
    {
        var validate = new JsonObject();
        AddPolicySource(validate);
        Add("model_policy_validate", "Validate a model policy", ToolHints.Query,
            $"Parse a model policy ({ModelPolicy.SchemaVersion}: default allow|deny, rules with id, effect, match, limits) and return its rules. " +
            "A mistake is an invalid error naming the line and the field path (e.g. rules[1].match.modle). Give file or policy.",
            Schema.Object(validate), McpModelPolicyJson.Context.ModelPolicyReport,
            call =>
            {
                var (text, source) = PolicySource(call);
                return Task.FromResult(ModelPolicyChecks.Validate(text, source));
            });

        var evaluate = new JsonObject
        {
            ["workspace"] = Schema.String("The workspace the request comes from."),
            ["method"] = Schema.String("HTTP method (default POST)."),
            ["path"] = Schema.String("Request path, e.g. /v1/chat/completions."),
            ["body"] = Schema.String("A JSON request body, read as the mediator reads it; the facts arguments override what it says."),
            ["worker"] = Schema.String("The runner id the request would reach."),
            ["model"] = Schema.String("The request's model."),
            ["stream"] = Schema.Boolean("Whether it asks for a streamed answer."),
            ["max_tokens"] = Schema.Integer("Its max_tokens.", 0),
            ["messages"] = Schema.Integer("How many messages it has.", 0, int.MaxValue),
            ["text_bytes"] = Schema.Integer("Bytes of prompt text.", 0),
            ["request_bytes"] = Schema.Integer("Bytes on the wire (default: the body's size).", 0),
            ["tools"] = Schema.Strings("Tool names it offers."),
        };
        AddPolicySource(evaluate);
        Add("model_policy_evaluate", "Evaluate a model policy", ToolHints.Query,
            "Decide one request with a model policy, as the workspace's model mediator would, without a workspace or a model: returns the facts " +
            "decided on and the decision (allowed, decision, reason, rule, limit) and the status the guest would get (200 forwarded, 403 denied).",
            Schema.Object(evaluate, "workspace", "path"), McpModelPolicyJson.Context.ModelPolicyEvaluation,
            call =>
            {
                var (text, source) = PolicySource(call);
                string[] tools = call.Strings("tools");
                var request = new ModelPolicyDryRunRequest
                {
                    Workspace = call.String("workspace", required: true)!, Method = call.String("method") ?? "POST", Path = call.String("path", required: true)!,
                    Body = call.String("body") is { } b ? Encoding.UTF8.GetBytes(b) : null, Worker = call.String("worker"), Model = call.String("model"),
                    Stream = call.Has("stream") ? call.Boolean("stream") : null, MaxTokens = call.Integer("max_tokens", 0),
                    MessageCount = (int?)call.Integer("messages", 0, int.MaxValue), TextBytes = call.Integer("text_bytes", 0),
                    RequestBytes = call.Integer("request_bytes", 0), ToolNames = call.Has("tools") ? tools : null,
                };
                return Task.FromResult(ModelPolicyChecks.Evaluate(text, source, request));
            });
    }
}

/// <summary>The JSON of the model policy tools' results (the MCP naming: snake_case).</summary>
internal static class McpModelPolicyJson
{
    /// <summary>Type information for the results.</summary>
    public static McpModelPolicyJsonContext Context { get; } = new(new JsonSerializerOptions { PropertyNamingPolicy = new McpNaming() });
}

/// <summary>Source-generated (AOT-safe) JSON of <see cref="ModelPolicyReport"/> and <see cref="ModelPolicyEvaluation"/>.</summary>
[JsonSerializable(typeof(ModelPolicyReport))]
[JsonSerializable(typeof(ModelPolicyEvaluation))]
internal sealed partial class McpModelPolicyJsonContext : JsonSerializerContext;

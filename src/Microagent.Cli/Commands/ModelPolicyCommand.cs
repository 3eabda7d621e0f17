using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microagent.Errors;
using Microagent.Models;

namespace Microagent.Cli.Commands;

/// <summary><c>microagent model policy validate|evaluate</c> (docs/ARCHITECTURE.md "Model mediation").</summary>
internal static class ModelPolicyCommand
{
    public static Command Create()
    {
        var cmd = new Command("policy", $"""
            Check model policy files (schema {ModelPolicy.SchemaVersion}) without a workspace. A policy decides each request a
            guest sends to its model (create --model ... --model-mediation policy --model-policy-file FILE): rules are tried in
            order, the first whose match fits decides, an allow rule's limits deny a request past them, and a request no rule
            matches gets the default. See README.md "Model policy" for the schema and an example.

            Examples:
              microagent model policy validate policy.yaml
              microagent model policy evaluate policy.yaml --workspace lab --path /v1/chat/completions --body-file req.json
              microagent model policy evaluate policy.yaml --workspace lab --path /v1/chat/completions --model tiny --max-tokens 64 --json
            """);
        cmd.Subcommands.Add(Validate());
        cmd.Subcommands.Add(Evaluate());
        return cmd;
    }

    private static Argument<string> File() => new("file") { Description = "The policy file (YAML or JSON)" };

    private static Command Validate()
    {
        var file = File();
        var cmd = new Command("validate", """
            Parse a policy file and list its rules. A mistake (an unknown field, a bad schema_version, a duplicate rule id, a
            value of the wrong kind) is reported with its line and the path of the field, e.g. rules[1].match.modle, and exit 2.

            Examples:
              microagent model policy validate policy.yaml
              microagent model policy validate policy.json --json
            """) { file };
        cmd.SetAction(r =>
        {
            string path = r.GetValue(file)!;
            var report = ModelPolicyChecks.Validate(Read(path), path);
            if (r.GetValue(GlobalOptions.Json)) { Cli.WriteJson(report, ModelPolicyCliJson.Default.ModelPolicyReport); return 0; }
            Console.WriteLine($"{path}: valid {report.SchemaVersion}; {report.Rules.Count} rule(s), default {Effect(report.Default)}");
            foreach (var (rule, i) in report.Rules.Select((x, i) => (x, i)))
                Console.WriteLine($"  {i + 1,2}. {rule.Id,-24} {Effect(rule.Effect),-5} {Describe(rule)}");
            return 0;
        });
        return cmd;
    }

    private static Command Evaluate()
    {
        var file = File();
        var workspace = new Option<string>("--workspace") { Description = "The workspace the request comes from", Required = true };
        var method = new Option<string>("--method") { Description = "HTTP method (default POST)", DefaultValueFactory = _ => "POST" };
        var path = new Option<string>("--path") { Description = "Request path, e.g. /v1/chat/completions", Required = true };
        var body = new Option<string?>("--body-file") { Description = "A JSON request body, read as the mediator reads it (the facts flags override what it says)" };
        var worker = new Option<string?>("--worker") { Description = "The runner id the request would reach" };
        var model = new Option<string?>("--model") { Description = "The request's model" };
        var stream = new Option<bool?>("--stream") { Description = "Whether it asks for a streamed answer (true or false)" };
        var maxTokens = new Option<long?>("--max-tokens") { Description = "Its max_tokens" };
        var messages = new Option<int?>("--messages") { Description = "How many messages it has" };
        var textBytes = new Option<long?>("--text-bytes") { Description = "Bytes of prompt text" };
        var requestBytes = new Option<long?>("--request-bytes") { Description = "Bytes on the wire (default: the body's size)" };
        var tools = new Option<string[]>("--tool") { Description = "A tool name it offers (repeatable)", AllowMultipleArgumentsPerToken = false };
        var cmd = new Command("evaluate", """
            Decide one request with a policy file, as the mediator would, without a workspace or a model: give the request's
            body (--body-file) and/or its facts as flags. Prints allow or deny, the rule that decided and why (a limit an allow
            rule's request exceeded is named). The exit status is 0 either way; --json has "allowed" and the facts used.

            Examples:
              microagent model policy evaluate policy.yaml --workspace lab --path /v1/chat/completions --body-file req.json
              microagent model policy evaluate policy.yaml --workspace lab --method GET --path /v1/models
              microagent model policy evaluate policy.yaml --workspace ci --path /v1/chat/completions --model tiny --stream true --max-tokens 512 --tool search
            """) { file, workspace, method, path, body, worker, model, stream, maxTokens, messages, textBytes, requestBytes, tools };
        cmd.SetAction(r =>
        {
            string policyPath = r.GetValue(file)!;
            string[] toolNames = r.GetValue(tools) ?? [];
            var request = new ModelPolicyDryRunRequest
            {
                Workspace = r.GetValue(workspace)!, Method = r.GetValue(method)!, Path = r.GetValue(path)!,
                Body = r.GetValue(body) is { } b ? ReadBytes(b) : null, Worker = r.GetValue(worker), Model = r.GetValue(model),
                Stream = r.GetValue(stream), MaxTokens = r.GetValue(maxTokens), MessageCount = r.GetValue(messages),
                TextBytes = r.GetValue(textBytes), RequestBytes = r.GetValue(requestBytes), ToolNames = toolNames.Length > 0 ? toolNames : null,
            };
            var result = ModelPolicyChecks.Evaluate(Read(policyPath), policyPath, request);
            if (r.GetValue(GlobalOptions.Json)) { Cli.WriteJson(result, ModelPolicyCliJson.Default.ModelPolicyEvaluation); return 0; }
            var d = result.Decision;
            var f = result.Facts;
            Console.WriteLine($"{d.Decision} (rule {d.Rule}{(d.Limit is { } l ? $", limit {l}" : "")}): {d.Reason}");
            Console.WriteLine($"  the guest would get {(d.Allowed ? "the runner's answer" : "403")}");
            Console.WriteLine($"  facts: {f.Method} {f.Path} capability={f.Capability} model={f.Model ?? "-"} stream={f.Stream.ToString().ToLowerInvariant()} " +
                $"max_tokens={f.MaxTokens?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "-"} messages={f.MessageCount} text_bytes={f.TextBytes} " +
                $"request_bytes={f.RequestBytes} tools={(f.ToolNames.Count == 0 ? "-" : string.Join(",", f.ToolNames))}");
            return 0;
        });
        return cmd;
    }

    private static string Effect(ModelPolicyEffect e) => e == ModelPolicyEffect.Allow ? "allow" : "deny";

    private static string Describe(ModelPolicyRule rule)
    {
        var m = rule.Match;
        var parts = new[] { ("workspace", m.Workspace), ("capability", m.Capability), ("worker", m.Worker), ("method", m.Method), ("path", m.Path), ("model", m.Model) }
            .Where(p => p.Item2.Count > 0).Select(p => $"{p.Item1}={string.Join("|", p.Item2)}").ToList();
        string match = parts.Count == 0 ? "any request" : string.Join(" ", parts);
        var l = rule.Limits;
        if (l is null) return match;
        var limits = new List<string>();
        if (l.MaxRequestBytes is { } a) limits.Add($"max_request_bytes={a}");
        if (l.MaxTextBytes is { } b) limits.Add($"max_text_bytes={b}");
        if (l.MaxMessages is { } c) limits.Add($"max_messages={c}");
        if (l.MaxTokens is { } d) limits.Add($"max_tokens={d}");
        if (l.Stream is { } s) limits.Add($"stream={s.ToString().ToLowerInvariant()}");
        if (l.Tools is { } t) limits.Add($"tools={(t.Count == 0 ? "none" : string.Join("|", t))}");
        return limits.Count == 0 ? match : $"{match}  limits: {string.Join(" ", limits)}";
    }

    private static string Read(string path)
    {
        try { return System.IO.File.ReadAllText(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new MicroagentException(ErrorKind.Invalid, $"cannot read the model policy {path}: {e.Message}") { Field = "file" };
        }
    }

    private static byte[] ReadBytes(string path)
    {
        try { return System.IO.File.ReadAllBytes(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new MicroagentException(ErrorKind.Invalid, $"cannot read the request body {path}: {e.Message}") { Field = "body" };
        }
    }
}

/// <summary>Source-generated JSON of the <c>model policy</c> documents (camelCase, enums as their names, as every <c>--json</c> document).</summary>
[JsonSourceGenerationOptions(JsonSerializerDefaults.Web, WriteIndented = true, UseStringEnumConverter = true,
    DefaultIgnoreCondition = JsonIgnoreCondition.Never)]
[JsonSerializable(typeof(ModelPolicyReport))]
[JsonSerializable(typeof(ModelPolicyEvaluation))]
internal sealed partial class ModelPolicyCliJson : JsonSerializerContext;

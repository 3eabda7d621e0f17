using System.Text.Json.Nodes;
using Microagent.Errors;
using Microagent.Models;

namespace Microagent.Mcp;

/// <summary>model_list: the model store.</summary>
/// <param name="Models">Every stored model.</param>
public sealed record ModelList(IReadOnlyList<ModelRecord> Models);

/// <summary>model_runners: the live runners.</summary>
/// <param name="Runners">Every runner alive now.</param>
public sealed record ModelRunnerList(IReadOnlyList<ModelRunnerRecord> Runners);

/// <summary>model_delete: whether an entry was removed.</summary>
/// <param name="Ref">The reference given.</param>
/// <param name="Removed">An entry was removed.</param>
public sealed record ModelDeleteResult(string Ref, bool Removed);

/// <summary>
/// Model store and runner tools, and the model arguments of workspace_create/start/run (docs/ARCHITECTURE.md "Model runner",
/// "MCP server: a trust boundary"). A tool call never picks a host executable or what it reads: the runner's program, its
/// arguments, its environment and <c>--model-runner-model</c> are refused (<c>policy_denied</c>; a person sets them with the CLI),
/// the <c>custom</c> backend with them, and a local <c>.gguf</c> is imported only from inside a host root.
/// </summary>
public sealed partial class ToolCatalog
{
    private static void AddModelProperties(JsonObject props, bool withRef = true)
    {
        if (withRef) props["model"] = Schema.String("Pair a model: hf.co/ORG/REPO[@REV]/FILE.gguf, ORG/REPO/FILE.gguf, or a .gguf path inside a host root (imported now). The guest gets OPENAI_BASE_URL=http://127.0.0.1:11434/v1.");
        props["model_runner"] = Schema.String("llamacpp (default) or vllm (needs a GPU). custom runners are set by a person with the CLI.", "llamacpp", "vllm");
        props["model_gpu"] = Schema.String("off, on or auto (default).", "off", "on", "auto");
        props["model_runner_served_model"] = Schema.String("The model name the runner serves.");
        props["model_mediation"] = Schema.String("off (default), local-allow (allow and audit) or policy.", "off", "local-allow", "policy");
        props["model_policy_file"] = Schema.String("Policy file (schema microagent.model_policy.v1) inside a host root, for model_mediation policy.");
        props["model_policy_url"] = Schema.String("Policy URL (must be an allowed host target of this server), for model_mediation policy.");
        props["model_policy_timeout_ms"] = Schema.Integer("How long the policy URL may take (default 2000; then 503, fail closed).", 1, 60000);
    }

    /// <summary>The model part of a spec from the call, after the trust-boundary checks; null when none given.</summary>
    private async Task<ModelSpec?> ModelArgsAsync(ToolCall call)
    {
        foreach (string refused in new[] { "model_runner_command", "model_runner_arg", "model_runner_env", "model_runner_model" })
            if (call.Has(refused)) throw ModelDenied($"{refused} picks what runs or what is read on the host", refused);
        string? reference = call.String("model");
        if (reference is not null && ModelReference.Parse(Path.IsPathRooted(reference) || reference.StartsWith('.') ? Path.Combine(Limits.Host.WorkingDirectory, reference) : reference) is { IsLocal: true } local)
        {
            call.HostPaths.Add(reference);
            reference = (await new ModelStore(_paths).ImportAsync(local.LocalPath!, Limits.Host, call.Cancellation).ConfigureAwait(false)).Ref;
        }
        string? policyFile = call.String("model_policy_file");
        if (policyFile is not null)
        {
            call.HostPaths.Add(policyFile);
            using var pinned = Limits.Host.OpenSource(policyFile, "model_policy_file");
            policyFile = pinned.RealPath;
        }
        string? policyUrl = call.String("model_policy_url");
        if (policyUrl is not null)
        {
            if (!Uri.TryCreate(policyUrl, UriKind.Absolute, out var u) || u.Scheme is not ("http" or "https"))
                throw new MicroagentException(ErrorKind.Invalid, $"model_policy_url {policyUrl} is not an http(s) URL") { Field = "model_policy_url" };
            call.HostTargets.Add($"{u.Host}:{u.Port}");
            Limits.Targets.Check(u.Host, u.Port, "model_policy_url");
        }
        var spec = new ModelSpec
        {
            Ref = reference,
            Runner = call.String("model_runner"),
            Gpu = call.String("model_gpu"),
            ServedModel = call.String("model_runner_served_model"),
            Mediation = call.String("model_mediation"),
            PolicyFile = policyFile,
            PolicyUrl = policyUrl,
            PolicyTimeoutMs = (int?)call.Integer("model_policy_timeout_ms", 1, 60000),
        };
        if (spec.Runner is { } r && ModelRunnerSpec.ParseBackend(r) == ModelRunnerBackend.Custom) throw ModelDenied("the custom runner runs a host program", "model_runner");
        return spec.IsEmpty ? null : spec;
    }

    private static bool IsDigest(string s) => s.StartsWith("sha256:", StringComparison.Ordinal) || (s.Length >= 12 && s.All(Uri.IsHexDigit));

    private static MicroagentException ModelDenied(string what, string argument) =>
        new(ErrorKind.PolicyDenied, $"{what}: this MCP server does not let a tool call choose it ({argument})",
            "a person sets runner programs, arguments and environment with the CLI (microagent create --model-runner-command/--model-runner-arg/--model-runner-env)")
        { Field = argument };

    private void AddModelTools()
    {
        Add("model_pull", "Pull a model", new ToolHints(ReadOnly: false, Destructive: false, Idempotent: true, OpenWorld: true),
            "Fetch a GGUF model into the store: hf.co/ORG/REPO[@REV]/FILE.gguf or ORG/REPO/FILE.gguf over HTTPS (the server's HF_TOKEN applies), or a local .gguf inside a host root.",
            Schema.Object(new JsonObject { ["ref"] = Schema.String("The model reference or a .gguf path inside a host root.") }, "ref"), McpJson.Context.ModelRecord,
            async call =>
            {
                string reference = call.String("ref", required: true)!;
                var store = new ModelStore(_paths);
                var parsed = ModelReference.Parse(Path.IsPathRooted(reference) || reference.StartsWith('.') ? Path.Combine(Limits.Host.WorkingDirectory, reference) : reference);
                if (!parsed.IsLocal) return await store.PullAsync(reference, new ModelPullOptions { Progress = call.Progress }, call.Cancellation).ConfigureAwait(false);
                call.HostPaths.Add(reference);
                return await store.ImportAsync(parsed.LocalPath!, Limits.Host, call.Cancellation).ConfigureAwait(false);
            });

        Add("model_list", "List models", ToolHints.Query, "The models in the store: reference, resolved source, sha256, size, path, last use.",
            Schema.Object([]), McpJson.Context.ModelList, _ => Task.FromResult(new ModelList(new ModelStore(_paths).List())));

        Add("model_delete", "Delete a model", new ToolHints(ReadOnly: false, Destructive: true, Idempotent: true, OpenWorld: false),
            "Remove a model from the store (by reference or digest).",
            Schema.Object(new JsonObject { ["ref"] = Schema.String("The model reference or digest.") }, "ref"), McpJson.Context.ModelDeleteResult,
            async call =>
            {
                string reference = call.String("ref", required: true)!;
                return new ModelDeleteResult(reference, await new ModelStore(_paths).DeleteAsync(reference, call.Cancellation).ConfigureAwait(false));
            });

        var serveProps = new JsonObject
        {
            ["ref"] = Schema.String("A stored model (reference or digest) or a remote reference (pulled)."),
            ["dedicated"] = Schema.Boolean("A private runner no workspace shares."),
        };
        Add("model_serve", "Start a model runner", new ToolHints(ReadOnly: false, Destructive: false, Idempotent: true, OpenWorld: true),
            "Start (or pin) a loopback host runner for a model (llamacpp or vllm); it stays up without holders until model_stop.",
            Schema.Object(serveProps.With(p => { AddModelProperties(p, withRef: false); p.Remove("model_mediation"); p.Remove("model_policy_file"); p.Remove("model_policy_url"); p.Remove("model_policy_timeout_ms"); }), "ref"),
            McpJson.Context.ModelRunnerRecord,
            async call =>
            {
                string reference = call.String("ref", required: true)!;
                if (!IsDigest(reference) && ModelReference.Parse(reference).IsLocal && new ModelStore(_paths).Find(reference) is null)
                    throw ModelDenied("model_serve takes a stored or remote model; import a local file with model_pull", "ref");
                var spec = (await ModelArgsAsync(call).ConfigureAwait(false) ?? new ModelSpec()).ToRunner(null);
                return await new ModelRunnerRegistry(_paths).ServeAsync(reference, spec, call.Boolean("dedicated"), call.Progress, call.Cancellation).ConfigureAwait(false);
            });

        Add("model_stop", "Stop model runners", new ToolHints(ReadOnly: false, Destructive: true, Idempotent: true, OpenWorld: false),
            "Force-stop the runners of a model (reference, digest or runner id); the result names the workspaces that held them.",
            Schema.Object(new JsonObject { ["ref"] = Schema.String("Model reference, digest or runner id.") }, "ref"), McpJson.Context.ModelStopResult,
            async call => await new ModelRunnerRegistry(_paths).StopAsync(call.String("ref", required: true)!, call.Cancellation).ConfigureAwait(false));

        Add("model_runners", "List model runners", ToolHints.Query, "The host model runners alive now (dead entries are dropped): model, URL, pid, holders.",
            Schema.Object([]), McpJson.Context.ModelRunnerList,
            async call => new ModelRunnerList(await new ModelRunnerRegistry(_paths).ListAsync(call.Cancellation).ConfigureAwait(false)));
    }
}

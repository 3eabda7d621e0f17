using System.CommandLine;
using Microagent.Models;

namespace Microagent.Cli.Commands;

/// <summary>
/// The model flags of create, run and start (docs/ARCHITECTURE.md "Model runner"): parsing only; every rule is the library's
/// (<see cref="ModelSpec.Resolve"/>, <see cref="ModelRunnerSpec.Validate"/>, <see cref="ModelReference.Parse"/>).
/// </summary>
internal sealed class ModelArgs
{
    private readonly Option<string?> _model = new("--model") { Description = "Pair a model: hf.co/ORG/REPO[@REV]/FILE.gguf, ORG/REPO/FILE.gguf or a .gguf path (pulled when missing); the guest gets OPENAI_BASE_URL=http://127.0.0.1:11434/v1" };
    private readonly Option<string?> _runner = new("--model-runner") { Description = "llamacpp (default: llama-server from $MICROAGENT_LLAMA_SERVER or PATH), vllm (needs a GPU) or custom (--model-runner-command + --model-runner-arg)" };
    private readonly Option<string?> _gpu = new("--model-gpu") { Description = "off (llama.cpp gets --device none --gpu-layers 0 unless --model-runner-arg sets a GPU flag), on, or auto (default: the runner decides)" };
    private readonly Option<string?> _runnerModel = new("--model-runner-model") { Description = "What the runner loads instead of the stored file (vllm: a model id or directory)" };
    private readonly Option<string?> _served = new("--model-runner-served-model") { Description = "Model name the runner serves (llama.cpp --alias, vllm --served-model-name)" };
    private readonly Option<string?> _command = new("--model-runner-command") { Description = "The runner program (custom: required; llamacpp/vllm: replaces llama-server/python3); run directly, never through a shell" };
    private readonly Option<string?> _name = new("--model-runner-name") { Description = "A name for the runner (shown by `microagent model runners`)" };
    private readonly Option<string?> _health = new("--model-runner-health-path") { Description = "Path polled until it answers below 400 (default /health)" };
    private readonly Option<string[]> _arg = new("--model-runner-arg") { Description = "Extra runner argument; custom: the argv after the program, with {model}, {host}, {port}, {addr} (repeatable)", AllowMultipleArgumentsPerToken = false };
    private readonly Option<string[]> _env = new("--model-runner-env") { Description = "Runner environment KEY=VALUE (repeatable; the values are never stored: give them again on each start)", AllowMultipleArgumentsPerToken = false };
    private readonly Option<string?> _mediation = new("--model-mediation") { Description = "off (default: raw bytes to the runner), local-allow (allow and audit) or policy (decide each request)" };
    private readonly Option<string?> _policyFile = new("--model-policy-file") { Description = "Policy file (schema microagent.model_policy.v1) for --model-mediation policy" };
    private readonly Option<string?> _policyUrl = new("--model-policy-url") { Description = "Policy URL the request's facts are POSTed to, for --model-mediation policy" };
    private readonly Option<TimeSpan?> _policyTimeout = new("--model-policy-timeout") { Description = "How long the policy URL may take (default 2s; then 503, fail closed)" };

    /// <summary>Adds the flags to <paramref name="command"/>; <paramref name="withRef"/> false leaves out <c>--model</c> (start overrides the runner and mediation only).</summary>
    public static ModelArgs AddTo(Command command, bool withRef = true)
    {
        var a = new ModelArgs();
        if (withRef) command.Options.Add(a._model);
        foreach (var o in new Option[] { a._runner, a._gpu, a._runnerModel, a._served, a._command, a._name, a._health, a._arg, a._env, a._mediation, a._policyFile, a._policyUrl, a._policyTimeout })
            command.Options.Add(o);
        return a;
    }

    /// <summary>The runner flags alone (<c>model serve</c>).</summary>
    public static ModelArgs AddRunnerTo(Command command)
    {
        var a = new ModelArgs();
        foreach (var o in new Option[] { a._runner, a._gpu, a._runnerModel, a._served, a._command, a._name, a._health, a._arg, a._env }) command.Options.Add(o);
        return a;
    }

    /// <summary>The model part of the spec these flags give; null when none was given.</summary>
    public ModelSpec? From(ParseResult r)
    {
        var spec = new ModelSpec
        {
            Ref = r.GetValue(_model),
            Runner = r.GetValue(_runner),
            Gpu = r.GetValue(_gpu),
            RunnerModel = r.GetValue(_runnerModel),
            ServedModel = r.GetValue(_served),
            Command = r.GetValue(_command),
            Name = r.GetValue(_name),
            HealthPath = r.GetValue(_health),
            Args = r.GetValue(_arg) ?? [],
            Env = r.GetValue(_env) ?? [],
            Mediation = r.GetValue(_mediation),
            PolicyFile = r.GetValue(_policyFile),
            PolicyUrl = r.GetValue(_policyUrl),
            PolicyTimeoutMs = r.GetValue(_policyTimeout) is { } t ? (int)Math.Ceiling(t.TotalMilliseconds) : null,
        };
        return spec.IsEmpty ? null : spec;
    }
}

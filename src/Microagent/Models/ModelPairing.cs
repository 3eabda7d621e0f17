using Microagent.Errors;

namespace Microagent.Models;

/// <summary>A workspace's stored model pairing (<c>config.json</c> <c>model</c>): the model, how it is served and how requests are mediated.</summary>
public sealed record ModelPairing
{
    /// <summary>The model reference (<see cref="ModelReference.Canonical"/>).</summary>
    public required string Ref { get; init; }
    /// <summary>The runner (its environment's keys only when stored).</summary>
    public ModelRunnerSpec Runner { get; init; } = new();
    /// <summary>The mediation between the guest's forward and the runner.</summary>
    public ModelMediationSettings Mediation { get; init; } = new();
}

/// <summary>What one boot's model forward reaches (the boot record's <c>model</c>; written before the supervisor starts).</summary>
/// <param name="Ref">The model reference.</param>
/// <param name="RunnerId">The registry id of the runner (re-resolved for every guest connection).</param>
/// <param name="Mediation">The mediation of this boot.</param>
public sealed record ModelAttachment(string Ref, string RunnerId, ModelMediationSettings Mediation);

/// <summary>
/// The model part of a spec, the CLI flags or an MCP call (<c>--model</c>, <c>--model-runner*</c>, <c>--model-gpu</c>,
/// <c>--model-mediation*</c>, <c>--model-policy-*</c>): set fields replace the stored pairing's (<see cref="Resolve"/>).
/// </summary>
public sealed record ModelSpec
{
    /// <summary>The model reference.</summary>
    public string? Ref { get; init; }
    /// <summary>llamacpp, vllm or custom.</summary>
    public string? Runner { get; init; }
    /// <summary>off, on or auto.</summary>
    public string? Gpu { get; init; }
    /// <summary>What the runner loads instead of the stored file.</summary>
    public string? RunnerModel { get; init; }
    /// <summary>The served model name.</summary>
    public string? ServedModel { get; init; }
    /// <summary>The runner's program.</summary>
    public string? Command { get; init; }
    /// <summary>The runner's name.</summary>
    public string? Name { get; init; }
    /// <summary>The health path.</summary>
    public string? HealthPath { get; init; }
    /// <summary>Extra arguments (custom: the argv after the program); empty keeps the stored ones.</summary>
    public IReadOnlyList<string> Args { get; init; } = [];
    /// <summary>Runner environment (KEY=VALUE); the values are never stored.</summary>
    public IReadOnlyList<string> Env { get; init; } = [];
    /// <summary>off, local-allow or policy.</summary>
    public string? Mediation { get; init; }
    /// <summary>Policy file (absolute or relative to the current directory).</summary>
    public string? PolicyFile { get; init; }
    /// <summary>Policy URL.</summary>
    public string? PolicyUrl { get; init; }
    /// <summary>Policy URL timeout in milliseconds.</summary>
    public int? PolicyTimeoutMs { get; init; }

    /// <summary>True when nothing is set.</summary>
    public bool IsEmpty => (Ref is null && Runner is null && Gpu is null && RunnerModel is null && ServedModel is null && Command is null
        && Name is null && HealthPath is null && Args.Count == 0 && Env.Count == 0 && Mediation is null && PolicyFile is null && PolicyUrl is null && PolicyTimeoutMs is null);

    /// <summary>
    /// The pairing these fields give over <paramref name="stored"/> (null = none); null when neither has a model. Checks the rules:
    /// the reference parses, the runner spec is valid, the mediation mode is known and <c>policy</c> has a file or a URL.
    /// </summary>
    public ModelPairing? Resolve(ModelPairing? stored)
    {
        if (Ref is null && stored is null)
        {
            if (IsEmpty) return null;
            throw new MicroagentException(ErrorKind.Invalid, "--model-runner*, --model-gpu and --model-mediation* need a model", "give --model REF") { Field = "model" };
        }
        return ResolveCore(stored);
    }

    /// <summary>The runner spec these fields give over <paramref name="stored"/> (null = the defaults), checked.</summary>
    public ModelRunnerSpec ToRunner(ModelRunnerSpec? stored)
    {
        var baseRunner = stored ?? new ModelRunnerSpec();
        var runner = baseRunner with
        {
            Backend = Runner is { } b ? ModelRunnerSpec.ParseBackend(b) : baseRunner.Backend,
            Gpu = Gpu is { } g ? ModelRunnerSpec.ParseGpu(g) : baseRunner.Gpu,
            Model = RunnerModel ?? baseRunner.Model,
            ServedModel = ServedModel ?? baseRunner.ServedModel,
            Command = Command ?? baseRunner.Command,
            Name = Name ?? baseRunner.Name,
            HealthPath = HealthPath ?? baseRunner.HealthPath,
            Args = Args.Count > 0 ? Args : baseRunner.Args,
            Env = Env, // stored specs keep the keys only: the values are this call's
        };
        runner.Validate();
        return runner;
    }

    /// <summary>The pairing these fields give over <paramref name="stored"/> (see <see cref="Resolve"/>).</summary>
    private ModelPairing ResolveCore(ModelPairing? stored)
    {
        var runner = ToRunner(stored?.Runner);
        var baseMed = stored?.Mediation ?? new ModelMediationSettings();
        var mediation = baseMed with
        {
            Mode = Mediation is { } m ? ParseMediation(m) : baseMed.Mode,
            PolicyFile = PolicyFile is { } f ? Path.GetFullPath(f) : baseMed.PolicyFile,
            PolicyUrl = PolicyUrl ?? baseMed.PolicyUrl,
            PolicyTimeoutMs = PolicyTimeoutMs ?? baseMed.PolicyTimeoutMs,
        };
        if (mediation.Mode == ModelMediationMode.Policy && mediation.PolicyFile is null && mediation.PolicyUrl is null)
            throw new MicroagentException(ErrorKind.Invalid, "--model-mediation policy needs --model-policy-file or --model-policy-url") { Field = "model_mediation" };
        if (mediation.PolicyTimeoutMs is < 1 or > 60000)
            throw new MicroagentException(ErrorKind.Invalid, $"--model-policy-timeout {mediation.PolicyTimeoutMs} ms is outside 1 ms..60 s") { Field = "model_mediation" };
        return new ModelPairing { Ref = Ref is { } r ? ModelReference.Parse(r).Canonical : stored!.Ref, Runner = runner, Mediation = mediation };
    }

    /// <summary>Parses <c>off</c>, <c>local-allow</c> or <c>policy</c>.</summary>
    public static ModelMediationMode ParseMediation(string text) => text.Trim().ToLowerInvariant() switch
    {
        "off" => ModelMediationMode.Off,
        "local-allow" => ModelMediationMode.LocalAllow,
        "policy" => ModelMediationMode.Policy,
        _ => throw new MicroagentException(ErrorKind.Invalid, $"--model-mediation '{text}' is not off, local-allow or policy") { Field = "model_mediation" },
    };
}

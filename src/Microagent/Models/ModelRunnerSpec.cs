using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microagent.Errors;

namespace Microagent.Models;

/// <summary>The kind of host process that serves a model (docs/ARCHITECTURE.md "Model runner").</summary>
[JsonConverter(typeof(ModelRunnerBackendJsonConverter))]
public enum ModelRunnerBackend
{
    /// <summary>llama.cpp's <c>llama-server</c> (<c>$MICROAGENT_LLAMA_SERVER</c> or PATH).</summary>
    LlamaCpp,
    /// <summary><c>python3 -m vllm.entrypoints.openai.api_server</c>; needs a GPU.</summary>
    Vllm,
    /// <summary>An argv template (<see cref="ModelRunnerSpec.Command"/> + <see cref="ModelRunnerSpec.Args"/>) with <c>{model}</c>, <c>{host}</c>, <c>{port}</c>, <c>{addr}</c>.</summary>
    Custom,
}

/// <summary>Whether a runner may use a GPU.</summary>
[JsonConverter(typeof(ModelGpuJsonConverter))]
public enum ModelGpu
{
    /// <summary>The runner's own default (no GPU flags are added).</summary>
    Auto,
    /// <summary>CPU only: llama.cpp gets <c>--device none --gpu-layers 0</c> unless the extra arguments set a GPU flag; vllm is refused.</summary>
    Off,
    /// <summary>A GPU is expected (no flags are added; the runner decides how).</summary>
    On,
}

/// <summary>Stored as <c>llama-cpp</c>, <c>vllm</c>, <c>custom</c>.</summary>
internal sealed class ModelRunnerBackendJsonConverter() : JsonStringEnumConverter<ModelRunnerBackend>(JsonNamingPolicy.KebabCaseLower, allowIntegerValues: false);

/// <summary>Stored as <c>auto</c>, <c>off</c>, <c>on</c>.</summary>
internal sealed class ModelGpuJsonConverter() : JsonStringEnumConverter<ModelGpu>(JsonNamingPolicy.KebabCaseLower, allowIntegerValues: false);

/// <summary>
/// How a workspace's model is served (the <c>--model-runner*</c> and <c>--model-gpu</c> flags; stored in the workspace's config
/// without <see cref="Env"/>'s values). Runners are shared by model and <see cref="Digest"/>.
/// </summary>
public sealed record ModelRunnerSpec
{
    /// <summary>The backend.</summary>
    public ModelRunnerBackend Backend { get; init; } = ModelRunnerBackend.LlamaCpp;
    /// <summary>GPU use.</summary>
    public ModelGpu Gpu { get; init; } = ModelGpu.Auto;
    /// <summary>What the runner loads instead of the stored file (vllm: a model id or directory); null = the stored GGUF file.</summary>
    public string? Model { get; init; }
    /// <summary>The model name the runner serves (llama.cpp <c>--alias</c>, vllm <c>--served-model-name</c>); null = the backend's default.</summary>
    public string? ServedModel { get; init; }
    /// <summary>The executable: llama.cpp's <c>llama-server</c>, vllm's <c>python3</c>, or a custom runner's program (required for custom).</summary>
    public string? Command { get; init; }
    /// <summary>A name for the runner (shown by <c>model runners</c>).</summary>
    public string? Name { get; init; }
    /// <summary>The path polled for readiness (an answer below 400 means ready); null = <c>/health</c>.</summary>
    public string? HealthPath { get; init; }
    /// <summary>Extra arguments (llama.cpp, vllm) or the custom argv after the program, with placeholders.</summary>
    public IReadOnlyList<string> Args { get; init; } = [];
    /// <summary>Environment of the runner (KEY=VALUE); the values are never stored (the config keeps the keys only).</summary>
    public IReadOnlyList<string> Env { get; init; } = [];

    /// <summary>The health path in effect.</summary>
    public string Health => HealthPath ?? "/health";

    /// <summary>This spec as stored: the environment's keys only.</summary>
    public ModelRunnerSpec ForStorage() => this with { Env = [.. Env.Select(e => e.Split('=', 2)[0])] };

    /// <summary>Identifies a runner configuration (everything, its name included, but the environment's values): runners of the same model and digest are shared.</summary>
    public string Digest
    {
        get
        {
            var sb = new StringBuilder();
            sb.Append(Backend).Append('\n').Append(Gpu).Append('\n').Append(Model).Append('\n').Append(ServedModel).Append('\n')
              .Append(Command).Append('\n').Append(Name).Append('\n').Append(Health).Append('\n');
            foreach (string a in Args) sb.Append("arg:").Append(a).Append('\n');
            foreach (string e in Env.Select(e => e.Split('=', 2)[0]).Order(StringComparer.Ordinal)) sb.Append("env:").Append(e).Append('\n');
            return Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(sb.ToString())))[..16].ToLowerInvariant();
        }
    }

    /// <summary>Checks the rules that need no host: custom needs a command, vllm needs a GPU, env entries are KEY=VALUE, the health path starts with '/'.</summary>
    public void Validate()
    {
        if (Backend == ModelRunnerBackend.Custom && string.IsNullOrWhiteSpace(Command))
            throw Bad("the custom runner needs --model-runner-command PROGRAM (its arguments: --model-runner-arg, with {model}, {host}, {port}, {addr})");
        if (Backend == ModelRunnerBackend.Vllm && Gpu == ModelGpu.Off)
            throw Bad("vllm needs a GPU: --model-gpu off is refused for it (use llamacpp for CPU)");
        if (HealthPath is { } h && (!h.StartsWith('/') || h.Any(char.IsWhiteSpace))) throw Bad($"health path '{h}' must start with '/' and have no spaces");
        foreach (string e in Env)
        {
            int eq = e.IndexOf('=');
            if (eq <= 0) throw Bad($"runner environment '{e.Split('=')[0]}' is not KEY=VALUE");
        }
        if (Name is { } n && (n.Length > 64 || n.Any(c => char.IsControl(c) || char.IsWhiteSpace(c)))) throw Bad("the runner name must be at most 64 characters without spaces");
    }

    /// <summary>Parses a backend name (<c>llamacpp</c>, <c>llama.cpp</c>, <c>vllm</c>, <c>custom</c>).</summary>
    public static ModelRunnerBackend ParseBackend(string text) => text.Trim().ToLowerInvariant() switch
    {
        "llamacpp" or "llama.cpp" or "llama-cpp" => ModelRunnerBackend.LlamaCpp,
        "vllm" => ModelRunnerBackend.Vllm,
        "custom" => ModelRunnerBackend.Custom,
        _ => throw Bad($"unknown model runner '{text}' (llamacpp, vllm or custom)"),
    };

    /// <summary>Parses <c>off</c>, <c>on</c> or <c>auto</c>.</summary>
    public static ModelGpu ParseGpu(string text) => text.Trim().ToLowerInvariant() switch
    {
        "auto" => ModelGpu.Auto,
        "off" or "none" or "cpu" => ModelGpu.Off,
        "on" or "gpu" => ModelGpu.On,
        _ => throw Bad($"--model-gpu '{text}' is not off, on or auto"),
    };

    /// <summary>The wire name of a backend.</summary>
    public static string BackendName(ModelRunnerBackend b) => b switch { ModelRunnerBackend.LlamaCpp => "llamacpp", ModelRunnerBackend.Vllm => "vllm", _ => "custom" };

    private static MicroagentException Bad(string message) => new(ErrorKind.Invalid, message, "see `microagent create --help` (the --model-runner* flags)") { Field = "model_runner" };
}

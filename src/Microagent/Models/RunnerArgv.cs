using Microagent.Errors;

namespace Microagent.Models;

/// <summary>
/// The one place a runner's argv is made (docs/ARCHITECTURE.md "Model runner"). The argv is executed directly (posix_spawn):
/// no shell ever parses it, so a placeholder's value (a path, a port) is always one argument.
/// </summary>
internal static class RunnerArgv
{
    /// <summary>Environment variable naming the llama-server binary (else PATH).</summary>
    public const string LlamaServerVariable = "MICROAGENT_LLAMA_SERVER";

    /// <summary>llama.cpp flags that choose GPU use; with any of them in the extra arguments, GPU off adds nothing.</summary>
    private static readonly string[] LlamaGpuFlags = ["--device", "-dev", "--gpu-layers", "-ngl", "--n-gpu-layers", "--main-gpu", "-mg", "--split-mode", "-sm", "--tensor-split", "-ts"];

    /// <summary>The argv for <paramref name="spec"/> serving <paramref name="modelPath"/> on <paramref name="host"/>:<paramref name="port"/>; the program is resolved by <paramref name="resolve"/> (PATH lookup).</summary>
    public static string[] Build(ModelRunnerSpec spec, string modelPath, string host, int port, Func<string, string?> resolve)
    {
        string model = spec.Model ?? modelPath;
        string portText = port.ToString(System.Globalization.CultureInfo.InvariantCulture);
        switch (spec.Backend)
        {
            case ModelRunnerBackend.LlamaCpp:
            {
                string exe = spec.Command ?? (Environment.GetEnvironmentVariable(LlamaServerVariable) is { Length: > 0 } v ? v : FindOnPath("llama-server") ?? CachedLlamaServer() ?? "llama-server");
                var argv = new List<string> { Program(exe, resolve, "llama-server", $"build it with scripts/llama-server.sh (or `make install`) or set ${LlamaServerVariable}"),
                    "--model", model, "--host", host, "--port", portText };
                if (spec.ServedModel is { } alias) argv.AddRange(["--alias", alias]);
                if (spec.Gpu == ModelGpu.Off && !SetsGpuFlag(spec.Args)) argv.AddRange(["--device", "none", "--gpu-layers", "0"]);
                argv.AddRange(spec.Args);
                return [.. argv];
            }
            case ModelRunnerBackend.Vllm:
            {
                if (spec.Gpu == ModelGpu.Off) throw MicroagentException.Invalid("vllm needs a GPU (--model-gpu off)", "use the llamacpp runner for CPU");
                var argv = new List<string> { Program(spec.Command ?? "python3", resolve, "python3", "install Python 3 with vllm"), "-m", "vllm.entrypoints.openai.api_server",
                    "--model", model, "--served-model-name", spec.ServedModel ?? Path.GetFileNameWithoutExtension(model), "--host", host, "--port", portText };
                argv.AddRange(spec.Args);
                return [.. argv];
            }
            default:
            {
                string exe = Program(spec.Command ?? throw MicroagentException.Invalid("the custom runner needs a command"), resolve, spec.Command, "give an absolute path or a program on PATH");
                return [exe, .. spec.Args.Select(a => Substitute(a, model, host, portText))];
            }
        }
    }

    /// <summary>Replaces <c>{model}</c>, <c>{host}</c>, <c>{port}</c> and <c>{addr}</c> (HOST:PORT) in one argument.</summary>
    public static string Substitute(string arg, string model, string host, string port) =>
        arg.Replace("{model}", model, StringComparison.Ordinal).Replace("{host}", host, StringComparison.Ordinal)
           .Replace("{port}", port, StringComparison.Ordinal).Replace("{addr}", $"{host}:{port}", StringComparison.Ordinal);

    /// <summary>True when <paramref name="args"/> already choose llama.cpp's GPU use (<c>--gpu-layers 9</c>, <c>-ngl=9</c>, <c>--device X</c>, ...).</summary>
    public static bool SetsGpuFlag(IEnumerable<string> args) =>
        args.Any(a => LlamaGpuFlags.Any(f => a == f || a.StartsWith(f + "=", StringComparison.Ordinal)));

    /// <summary>PATH lookup of a program name (a name with a '/' is taken as a path).</summary>
    public static string? FindOnPath(string name)
    {
        if (name.Contains('/')) return File.Exists(name) ? Path.GetFullPath(name) : null;
        foreach (string dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            string p = Path.Combine(dir, name);
            if (File.Exists(p)) return p;
        }
        return null;
    }

    /// <summary>A llama-server that scripts/llama-server.sh built (<c>~/.cache/microagent/llama-server/HASH/llama-server</c>); null when none.</summary>
    public static string? CachedLlamaServer()
    {
        string root = Environment.GetEnvironmentVariable("MICROAGENT_LLAMA_CACHE") is { Length: > 0 } c ? c
            : Path.Combine(Environment.GetEnvironmentVariable("XDG_CACHE_HOME") is { Length: > 0 } x ? x
                : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache"), "microagent", "llama-server");
        if (!Directory.Exists(root)) return null;
        return Directory.EnumerateDirectories(root).Select(d => Path.Combine(d, "llama-server")).Where(File.Exists).Order(StringComparer.Ordinal).FirstOrDefault();
    }

    private static string Program(string name, Func<string, string?> resolve, string what, string remediation) =>
        resolve(name) ?? throw MicroagentException.NotFound($"the model runner program '{what}' was not found", remediation);
}

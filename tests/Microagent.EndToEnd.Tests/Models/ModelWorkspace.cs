using System.Diagnostics;
using System.Text.Json;
using Microagent.TestSupport;

namespace Microagent.EndToEnd.Tests.Models;

/// <summary>What the model end-to-end tests share: the tiny GGUF, the llama-server binary, CLI helpers and guest HTTP calls through OPENAI_BASE_URL.</summary>
public static class ModelWorkspace
{
    private static readonly Lazy<string> Dir = new(() =>
    {
        string d = Path.Combine(MicroagentCli.StateDir, "model-test-files");
        Directory.CreateDirectory(d);
        TinyGguf.Write(Path.Combine(d, "tiny.gguf"));
        return d;
    });

    /// <summary>The tiny random-weight llama model (written once per test process).</summary>
    public static string Gguf => Path.Combine(Dir.Value, "tiny.gguf");

    /// <summary>A scratch directory beside it.</summary>
    public static string Files => Dir.Value;

    /// <summary>llama-server: $MICROAGENT_LLAMA_SERVER, else the cache scripts/llama-server.sh builds into.</summary>
    public static string LlamaServer()
    {
        if (Environment.GetEnvironmentVariable("MICROAGENT_LLAMA_SERVER") is { Length: > 0 } env && File.Exists(env)) return env;
        var psi = new ProcessStartInfo("bash") { RedirectStandardOutput = true, UseShellExecute = false };
        psi.ArgumentList.Add(Path.Combine(MicroagentCli.RepoRoot, "scripts", "llama-server.sh"));
        psi.ArgumentList.Add("--print");
        using var p = Process.Start(psi)!;
        string path = p.StandardOutput.ReadToEnd().Trim();
        p.WaitForExit();
        return p.ExitCode == 0 && File.Exists(path) ? path
            : throw new InvalidOperationException("llama-server is not built: run scripts/llama-server.sh (make install does) or set MICROAGENT_LLAMA_SERVER");
    }

    public static Task<CliResult> Ma(params string[] args) => MicroagentCli.RunAsync(args, timeoutSeconds: 600);

    public static async Task<CliResult> Ok(params string[] args)
    {
        var r = await Ma(args);
        Assert.True(r.ExitCode == 0, $"microagent {string.Join(' ', args)} exited {r.ExitCode}: {r.Stdout}\n{r.Stderr}");
        return r;
    }

    /// <summary>A chat completion from inside the guest, through $OPENAI_BASE_URL (busybox wget); the response body.</summary>
    public static async Task<string> ChatInGuestAsync(string workspace, bool stream, int maxTokens = 4)
    {
        string body = $$"""{"model":"tiny","messages":[{"role":"user","content":"hello"}],"max_tokens":{{maxTokens}},"stream":{{(stream ? "true" : "false")}}}""";
        var r = await Ok("exec", workspace, "-e", $"BODY={body}", "--", "sh", "-c",
            "wget -qO- --header 'Content-Type: application/json' --post-data \"$BODY\" \"$OPENAI_BASE_URL/chat/completions\"");
        return r.Stdout;
    }

    /// <summary>The runners alive now (<c>model runners --json</c>).</summary>
    public static async Task<List<(string Id, int Pid, string[] Holders)>> RunnersAsync()
    {
        var r = await Ok("model", "runners", "--json");
        using var doc = JsonDocument.Parse(r.Stdout);
        return [.. doc.RootElement.EnumerateArray().Select(e => (e.GetProperty("id").GetString()!, e.GetProperty("pid").GetInt32(),
            e.GetProperty("holders").EnumerateArray().Select(h => h.GetString()!).ToArray()))];
    }

    /// <summary>The details of the workspace's events.</summary>
    public static async Task<List<string>> EventDetailsAsync(string workspace)
    {
        var r = await Ok("events", workspace, "--json");
        using var doc = JsonDocument.Parse(r.Stdout);
        return [.. doc.RootElement.EnumerateArray().Select(e => e.TryGetProperty("detail", out var d) ? d.GetString() ?? "" : "")];
    }

    public static async Task DeleteAsync(params string[] names)
    {
        foreach (string n in names) await Ma("delete", n, "--force");
    }
}

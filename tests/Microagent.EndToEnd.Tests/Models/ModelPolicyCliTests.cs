using System.Text.Json;

namespace Microagent.EndToEnd.Tests.Models;

/// <summary><c>model policy validate|evaluate</c> through the real binary: dry runs of a policy file, no workspace.</summary>
public sealed class ModelPolicyCliTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("ma-e2e-policy-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    private string Write(string name, string text)
    {
        string path = Path.Combine(_dir, name);
        File.WriteAllText(path, text);
        return path;
    }

    private const string Policy = """
        schema_version: microagent.model_policy.v1
        default: deny
        rules:
          - id: chat
            effect: allow
            match: { capability: chat, model: "tiny*" }
            limits: { max_tokens: 64, stream: false }
        """;

    [Fact]
    public async Task Validate_prints_the_rules_and_a_mistake_names_its_field_path()
    {
        string good = Write("good.yaml", Policy);
        var ok = await MicroagentCli.RunAsync(["model", "policy", "validate", good]);
        Assert.True(ok.ExitCode == 0, ok.Stderr);
        Assert.Contains("1 rule(s), default deny", ok.Stdout);
        Assert.Contains("max_tokens=64", ok.Stdout);
        var json = await MicroagentCli.RunAsync(["model", "policy", "validate", good, "--json"]);
        Assert.Equal("allow", JsonDocument.Parse(json.Stdout).RootElement.GetProperty("rules")[0].GetProperty("effect").GetString());

        string bad = Write("bad.yaml", Policy.Replace("model:", "modle:"));
        var err = await MicroagentCli.RunAsync(["model", "policy", "validate", bad, "--json"]);
        Assert.Equal(2, err.ExitCode);
        var e = JsonDocument.Parse(err.Stdout).RootElement.GetProperty("error");
        Assert.Equal("invalid", e.GetProperty("kind").GetString());
        Assert.Contains("rules[0].match.modle: unknown field", e.GetProperty("message").GetString());
    }

    [Fact]
    public async Task Evaluate_decides_a_body_file_and_facts_flags()
    {
        string policy = Write("p.yaml", Policy);
        string body = Write("req.json", """{"model":"tiny-1","messages":[{"role":"user","content":"hello"}],"max_tokens":16}""");
        var allow = await MicroagentCli.RunAsync(["model", "policy", "evaluate", policy, "--workspace", "lab", "--path", "/v1/chat/completions", "--body-file", body]);
        Assert.True(allow.ExitCode == 0, allow.Stderr);
        Assert.StartsWith("allow (rule chat)", allow.Stdout);
        Assert.Contains("text_bytes=5", allow.Stdout);

        var deny = await MicroagentCli.RunAsync(["model", "policy", "evaluate", policy, "--workspace", "lab", "--path", "/v1/chat/completions",
            "--body-file", body, "--stream", "true", "--json"]);
        Assert.True(deny.ExitCode == 0, deny.Stderr);
        var d = JsonDocument.Parse(deny.Stdout).RootElement;
        Assert.Equal((403, "stream"), (d.GetProperty("status").GetInt32(), d.GetProperty("decision").GetProperty("limit").GetString()));

        var help = await MicroagentCli.RunAsync(["model", "policy", "evaluate", "--help"]);
        Assert.Contains("Examples:", help.Stdout);
    }
}

using System.Text.Json;
using System.Text.Json.Nodes;
using Microagent.Errors;
using Microagent.Mcp;

namespace Microagent.Tests.Mcp;

/// <summary>model_policy_validate and model_policy_evaluate through the catalog: the CLI's dry runs, host paths inside the roots only.</summary>
public sealed class ToolCatalogModelPolicyTests : IDisposable
{
    private const string Policy = """
        schema_version: microagent.model_policy.v1
        default: deny
        rules:
          - { id: chat, effect: allow, match: { capability: chat }, limits: { max_tokens: 10 } }
        """;
    private readonly string _base = Directory.CreateTempSubdirectory("ma-mcp-policy-").FullName;
    private readonly ToolCatalog _catalog;

    public ToolCatalogModelPolicyTests()
    {
        Directory.CreateDirectory(Path.Combine(_base, "root"));
        File.WriteAllText(Path.Combine(_base, "root", "policy.yaml"), Policy);
        File.WriteAllText(Path.Combine(_base, "outside.yaml"), Policy);
        _catalog = ToolCatalog.Create(new StatePaths(Path.Combine(_base, "state")),
            McpLimits.Create(new McpLimitOptions { WorkingDirectory = Path.Combine(_base, "root") }));
    }

    public void Dispose() => Directory.Delete(_base, true);

    private Task<JsonNode?> Call(string tool, JsonObject args) =>
        _catalog.Find(tool)!.Handler(new ToolCall(tool, JsonSerializer.Deserialize<Dictionary<string, JsonElement>>(args.ToJsonString()), new Progress<string>(), CancellationToken.None));

    [Fact]
    public async Task Validate_lists_the_rules_of_a_file_inside_the_roots_or_an_inline_policy()
    {
        var r = await Call("model_policy_validate", new JsonObject { ["file"] = Path.Combine(_base, "root", "policy.yaml") });
        Assert.Equal("deny", r!["default"]!.GetValue<string>());
        Assert.Equal("chat", r["rules"]![0]!["id"]!.GetValue<string>());
        Assert.Equal(10, r["rules"]![0]!["limits"]!["max_tokens"]!.GetValue<int>());
        var inline = await Call("model_policy_validate", new JsonObject { ["policy"] = Policy });
        Assert.Equal("policy", inline!["source"]!.GetValue<string>());
        Assert.True(_catalog.Find("model_policy_validate")!.Hints.ReadOnly);
    }

    [Fact]
    public async Task A_file_outside_the_roots_is_policy_denied_and_a_bad_policy_invalid()
    {
        var denied = await Assert.ThrowsAnyAsync<MicroagentException>(() => Call("model_policy_validate", new JsonObject { ["file"] = Path.Combine(_base, "outside.yaml") }));
        Assert.Equal(ErrorKind.PolicyDenied, denied.Kind);
        var bad = await Assert.ThrowsAnyAsync<MicroagentException>(() => Call("model_policy_validate", new JsonObject { ["policy"] = "schema_version: microagent.model_policy.v1\nrulez: []\n" }));
        Assert.Equal(ErrorKind.Invalid, bad.Kind);
        Assert.Contains("rulez: unknown field", bad.Message);
        await Assert.ThrowsAnyAsync<MicroagentException>(() => Call("model_policy_validate", new JsonObject()));
    }

    [Fact]
    public async Task Evaluate_decides_from_a_body_and_facts_arguments()
    {
        var allowed = await Call("model_policy_evaluate", new JsonObject
        {
            ["policy"] = Policy, ["workspace"] = "lab", ["path"] = "/v1/chat/completions",
            ["body"] = """{"model":"tiny","messages":[{"role":"user","content":"hi"}],"max_tokens":5}""",
        });
        Assert.True(allowed!["decision"]!["allowed"]!.GetValue<bool>());
        Assert.Equal(("chat", 2L, 1), (allowed["facts"]!["capability"]!.GetValue<string>(), allowed["facts"]!["text_bytes"]!.GetValue<long>(), allowed["facts"]!["message_count"]!.GetValue<int>()));
        var denied = await Call("model_policy_evaluate", new JsonObject
        {
            ["file"] = Path.Combine(_base, "root", "policy.yaml"), ["workspace"] = "lab", ["path"] = "/v1/chat/completions", ["max_tokens"] = 50,
        });
        Assert.Equal((403, "max_tokens", "chat"), (denied!["status"]!.GetValue<int>(), denied["decision"]!["limit"]!.GetValue<string>(), denied["decision"]!["rule"]!.GetValue<string>()));
    }
}

using System.Text;
using Microagent.Errors;
using Microagent.Models;

namespace Microagent.Tests.Models;

/// <summary>The model policy file: parsing (schema, unknown fields with their path), first match, limits, globs.</summary>
public sealed class ModelPolicyTests
{
    private const string Example = """
        schema_version: microagent.model_policy.v1
        default: deny
        rules:
          - id: no-ci-embeddings
            effect: deny
            match: { workspace: "ci-*", capability: embeddings }
          - id: small-chat
            effect: allow
            match:
              capability: [chat, completions]
              model: "tiny*"
            limits:
              max_request_bytes: 4096
              max_text_bytes: 100
              max_messages: 3
              max_tokens: 64
              stream: false
              tools: [search]
          - id: list-models
            effect: allow
            match: { method: get, path: /v1/models* }
        """;

    private static ModelRequestFacts Chat(string workspace = "lab", string body = """{"model":"tiny-llama","messages":[{"role":"user","content":"hi"}],"max_tokens":16}""") =>
        ModelRequestFacts.FromRequest(workspace, "POST", "/v1/chat/completions?x=1", Encoding.UTF8.GetBytes(body));

    [Fact]
    public void The_first_matching_rule_decides()
    {
        var p = ModelPolicy.Parse(Example);
        Assert.Equal(3, p.Rules.Count);
        var d = p.Evaluate(Chat());
        Assert.True(d.Allowed);
        Assert.Equal("small-chat", d.Rule);
        var embed = ModelRequestFacts.FromRequest("ci-7", "POST", "/v1/embeddings", Encoding.UTF8.GetBytes("""{"model":"tiny","input":"x"}"""));
        Assert.Equal(("deny", "no-ci-embeddings"), (p.Evaluate(embed).Decision, p.Evaluate(embed).Rule));
        var models = ModelRequestFacts.FromRequest("lab", "GET", "/v1/models", default);
        Assert.Equal("list-models", p.Evaluate(models).Rule);
    }

    [Fact]
    public void A_request_no_rule_matches_gets_the_default()
    {
        var p = ModelPolicy.Parse(Example);
        var d = p.Evaluate(Chat(body: """{"model":"big-70b","messages":[]}"""));
        Assert.False(d.Allowed);
        Assert.Equal("default", d.Rule);
        var allowAll = ModelPolicy.Parse("schema_version: microagent.model_policy.v1\ndefault: allow\n");
        Assert.True(allowAll.Evaluate(Chat()).Allowed);
        Assert.Equal(ModelPolicyEffect.Deny, ModelPolicy.Parse("schema_version: microagent.model_policy.v1").Default);
    }

    [Theory]
    [InlineData("""{"model":"tiny","messages":[{"role":"user","content":"hi"}]}""", "max_tokens")]
    [InlineData("""{"model":"tiny","messages":[{"role":"user","content":"hi"}],"max_tokens":65}""", "max_tokens")]
    [InlineData("""{"model":"tiny","messages":[{"role":"user","content":"hi"}],"max_completion_tokens":999}""", "max_tokens")]
    [InlineData("""{"model":"tiny","messages":[{},{},{},{}],"max_tokens":1}""", "max_messages")]
    [InlineData("""{"model":"tiny","messages":[{"role":"user","content":[{"type":"text","text":"0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789X"}]}],"max_tokens":1}""", "max_text_bytes")]
    [InlineData("""{"model":"tiny","messages":[],"max_tokens":1,"stream":true}""", "stream")]
    [InlineData("""{"model":"tiny","messages":[],"max_tokens":1,"tools":[{"type":"function","function":{"name":"search"}},{"type":"function","function":{"name":"shell"}}]}""", "tools")]
    public void An_allow_rule_whose_limit_is_exceeded_denies_naming_the_limit(string body, string limit)
    {
        var d = ModelPolicy.Parse(Example).Evaluate(Chat(body: body));
        Assert.False(d.Allowed);
        Assert.Equal("deny", d.Decision);
        Assert.Equal("small-chat", d.Rule);
        Assert.Equal(limit, d.Limit);
        Assert.Contains(limit, d.Reason);
    }

    [Fact]
    public void Request_bytes_are_limited_and_allowed_tools_pass()
    {
        var p = ModelPolicy.Parse(Example);
        var ok = Chat(body: """{"model":"tiny","messages":[],"max_tokens":1,"tools":[{"type":"function","function":{"name":"search"}}]}""");
        Assert.True(p.Evaluate(ok).Allowed);
        Assert.Equal("max_request_bytes", p.Evaluate(ok with { RequestBytes = 5000 }).Limit);
    }

    [Fact]
    public void Json_is_accepted_as_well()
    {
        var p = ModelPolicy.Parse("""{"schema_version":"microagent.model_policy.v1","default":"allow","rules":[{"id":"r","effect":"deny","match":{"model":"x"}}]}""");
        Assert.False(p.Evaluate(Chat(body: """{"model":"x"}""")).Allowed);
        Assert.True(p.Evaluate(Chat()).Allowed);
    }

    [Theory]
    [InlineData("schema_version: microagent.model_policy.v1\nrules:\n  - id: a\n    effect: allow\n    match:\n      modle: x\n", "rules[0].match.modle", ":6:")]
    [InlineData("schema_version: microagent.model_policy.v1\ndefualt: deny\n", "defualt", ":2:")]
    [InlineData("schema_version: microagent.model_policy.v1\nrules:\n  - id: a\n    effect: allow\n    limits: { max_tokenz: 3 }\n", "rules[0].limits.max_tokenz", ":5:")]
    [InlineData("schema_version: microagent.model_policy.v1\nrules:\n  - id: a\n    effect: allow\n    colour: red\n", "rules[0].colour", ":5:")]
    public void Unknown_fields_are_errors_naming_their_path_and_line(string text, string path, string line)
    {
        var e = Assert.ThrowsAny<MicroagentException>(() => ModelPolicy.Parse(text, "p.yaml"));
        Assert.Equal(ErrorKind.Invalid, e.Kind);
        Assert.Contains(path + ": unknown field", e.Message);
        Assert.Contains("p.yaml" + line, e.Message);
    }

    [Theory]
    [InlineData("default: deny\n", "schema_version: required")]
    [InlineData("schema_version: microagent.model_policy.v2\n", "is not microagent.model_policy.v1")]
    [InlineData("schema_version: microagent.model_policy.v1\ndefault: maybe\n", "'maybe' is not allow or deny")]
    [InlineData("schema_version: microagent.model_policy.v1\nrules:\n  - { id: a, effect: allow }\n  - { id: a, effect: deny }\n", "rules[1].id: 'a' is already")]
    [InlineData("schema_version: microagent.model_policy.v1\nrules:\n  - { effect: allow }\n", "rules[0].id: required")]
    [InlineData("schema_version: microagent.model_policy.v1\nrules:\n  - { id: a }\n", "rules[0].effect: required")]
    [InlineData("schema_version: microagent.model_policy.v1\nrules:\n  - { id: 'a b', effect: allow }\n", "is not an id")]
    [InlineData("schema_version: microagent.model_policy.v1\nrules:\n  - { id: a, effect: deny, limits: { max_tokens: 1 } }\n", "limits belong to allow rules")]
    [InlineData("schema_version: microagent.model_policy.v1\nrules:\n  - { id: a, effect: allow, limits: { max_tokens: lots } }\n", "'lots' is not a whole number")]
    [InlineData("schema_version: microagent.model_policy.v1\nrules:\n  - { id: a, effect: allow, limits: { stream: yes } }\n", "'yes' is not true or false")]
    [InlineData("schema_version: microagent.model_policy.v1\nrules:\n  - { id: a, effect: allow, match: { capability: chats } }\n", "'chats' matches no capability")]
    [InlineData("schema_version: microagent.model_policy.v1\nrules:\n  - { id: a, effect: allow, match: { model: [] } }\n", "an empty list matches nothing")]
    [InlineData("schema_version: microagent.model_policy.v1\nrules: { id: a }\n", "rules: expected a list")]
    [InlineData("- just a list\n", "the policy must be a mapping")]
    [InlineData("schema_version: [\n", "p.yaml:")]
    [InlineData("", "the policy is empty")]
    public void Bad_policies_are_refused_in_words(string text, string expected)
    {
        var e = Assert.ThrowsAny<MicroagentException>(() => ModelPolicy.Parse(text, "p.yaml"));
        Assert.Equal(ErrorKind.Invalid, e.Kind);
        Assert.Equal("model_policy_file", e.Field);
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void Match_fields_glob_methods_ignore_case_and_a_missing_model_only_matches_star()
    {
        var p = ModelPolicy.Parse("""
            schema_version: microagent.model_policy.v1
            rules:
              - { id: any-model, effect: allow, match: { model: "*", method: Post, workspace: ["lab", "team-?"], worker: "runner-*" } }
              - { id: some-model, effect: allow, match: { model: "?*" } }
            """);
        var noModel = ModelRequestFacts.FromRequest("team-a", "POST", "/v1/chat/completions", Encoding.UTF8.GetBytes("{}"), worker: "runner-1");
        Assert.Equal("any-model", p.Evaluate(noModel).Rule);
        Assert.Equal("default", p.Evaluate(noModel with { Workspace = "team-ab" }).Rule);
        Assert.Equal("default", p.Evaluate(noModel with { Worker = null, Workspace = "x" }).Rule);
        Assert.Equal("some-model", p.Evaluate(noModel with { Workspace = "x", Model = "m" }).Rule);
    }

    [Fact]
    public void Facts_come_from_the_body_and_the_path()
    {
        var f = ModelRequestFacts.FromRequest("lab", "POST", "/v1/chat/completions", Encoding.UTF8.GetBytes("""
            {"model":"m","stream":true,"max_completion_tokens":7,"messages":[{"role":"system","content":"héllo"},{"role":"user","content":[{"type":"text","text":"abc"},{"type":"image_url","image_url":{"url":"data:xyz"}}]}],
             "tools":[{"type":"function","function":{"name":"search"}}],"functions":[{"name":"legacy"}]}
            """));
        Assert.Equal(("chat", "m", true, 7L, 2, 9L), (f.Capability, f.Model, f.Stream, f.MaxTokens!.Value, f.MessageCount, f.TextBytes));
        Assert.Equal(new[] { "search", "legacy" }, f.ToolNames);
        Assert.Equal("completions", ModelCapabilities.Of("/v1/completions"));
        Assert.Equal("embeddings", ModelCapabilities.Of("/embedding"));
        Assert.Equal("models", ModelCapabilities.Of("/v1/models/tiny"));
        Assert.Equal("other", ModelCapabilities.Of("/v1/audio/speech"));
        var prompt = ModelRequestFacts.FromRequest("lab", "POST", "/v1/completions", Encoding.UTF8.GetBytes("""{"prompt":["ab","cd"],"max_tokens":3}"""));
        Assert.Equal((4L, 3L), (prompt.TextBytes, prompt.MaxTokens!.Value));
        var e = Assert.Throws<MicroagentException>(() => ModelRequestFacts.FromRequest("lab", "POST", "/v1/chat/completions", Encoding.UTF8.GetBytes("[1,2]")));
        Assert.Equal("body", e.Field);
        Assert.Throws<MicroagentException>(() => ModelRequestFacts.FromRequest("lab", "POST", "/v1/chat/completions", Encoding.UTF8.GetBytes("{\"model\":")));
    }

    [Fact]
    public void Dry_runs_let_facts_override_the_body()
    {
        var r = ModelPolicyChecks.Evaluate(Example, "p.yaml", new ModelPolicyDryRunRequest
        {
            Workspace = "lab", Path = "/v1/chat/completions", Body = Encoding.UTF8.GetBytes("""{"model":"tiny","max_tokens":1}"""), MaxTokens = 500,
        });
        Assert.Equal((403, "max_tokens", 500L), (r.Status, r.Decision.Limit, r.Facts.MaxTokens!.Value));
        var report = ModelPolicyChecks.Validate(Example, "p.yaml");
        Assert.Equal(new[] { "no-ci-embeddings", "small-chat", "list-models" }, report.Rules.Select(x => x.Id));
    }
}

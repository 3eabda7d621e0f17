using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using Microagent.Models;

namespace Microagent.Tests.Models.Mediation;

/// <summary>
/// The mediator over real loopback sockets: a real HTTP client in front, an OpenAI-compatible upstream and a policy URL server
/// behind (<see cref="LoopbackHttpServer"/>). Decisions, status codes and error bodies, streaming, keep-alive, the audit.
/// </summary>
public sealed class HttpModelMediatorTests : IAsyncLifetime
{
    private const string Secret = "PROMPT-TEXT-THAT-MUST-NOT-LEAK";
    private static readonly string ChatBody = $$"""{"model":"tiny","messages":[{"role":"user","content":"{{Secret}}"}],"max_tokens":8}""";
    private readonly string _dir = Directory.CreateTempSubdirectory("ma-mediator-").FullName;
    private LoopbackHttpServer _upstream = null!;
    private TaskCompletionSource _releaseStream = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public Task InitializeAsync()
    {
        _upstream = new LoopbackHttpServer(async (req, s, ct) =>
        {
            if (req.Target == "/v1/chat/completions" && req.Text.Contains("\"stream\":true"))
            {
                await s.WriteAsync("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"u8.ToArray(), ct);
                await LoopbackHttpServer.ChunkAsync(s, "data: {\"choices\":[{\"delta\":{\"content\":\"first\"}}]}\n\n", ct);
                await _releaseStream.Task.WaitAsync(ct);
                await LoopbackHttpServer.ChunkAsync(s, "data: [DONE]\n\n", ct);
                await s.WriteAsync("0\r\n\r\n"u8.ToArray(), ct);
                return;
            }
            string echo = new JsonObject { ["path"] = req.Target, ["model"] = "tiny", ["object"] = "chat.completion" }.ToJsonString();
            await LoopbackHttpServer.RespondAsync(s, 200, "application/json", echo, ct, "X-Microagent-Spoof: from-runner", "Keep-Alive: timeout=5");
        });
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        _releaseStream.TrySetResult();
        await _upstream.DisposeAsync();
        Directory.Delete(_dir, true);
    }

    private TestEndpoints Upstream() => new(() => new ModelEndpoint("127.0.0.1", _upstream.Port, "runner-1", "tiny"));

    private MediatorHarness Harness(ModelMediationSettings settings, IModelEndpointSource? upstream = null) => new(settings, upstream ?? Upstream(), _dir);

    private static readonly ModelMediationSettings LocalAllow = new() { Mode = ModelMediationMode.LocalAllow };

    private static StringContent Json(string body) => new(body, Encoding.UTF8, "application/json");

    private string PolicyFile(string yaml)
    {
        string path = Path.Combine(_dir, $"policy-{Guid.NewGuid():N}.yaml");
        File.WriteAllText(path, "schema_version: microagent.model_policy.v1\n" + yaml);
        return path;
    }

    [Fact]
    public async Task Local_allow_forwards_with_the_runners_host_and_without_forged_fields_and_audits_without_prompt_text()
    {
        await using var h = Harness(LocalAllow);
        using var http = new HttpClient { BaseAddress = h.BaseAddress };
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = Json(ChatBody) };
        request.Headers.TryAddWithoutValidation("X-Microagent-Workspace", "someone-else");
        request.Headers.TryAddWithoutValidation("X-Forwarded-For", "10.0.0.1");
        request.Headers.TryAddWithoutValidation("Authorization", "Bearer sk-guest");
        using var response = await http.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Contains("chat.completion", await response.Content.ReadAsStringAsync());
        Assert.False(response.Headers.Contains("X-Microagent-Spoof"));
        Assert.StartsWith("mr-", response.Headers.GetValues("X-Microagent-Request-Id").Single());

        var seen = Assert.Single(_upstream.Requests);
        Assert.Equal($"127.0.0.1:{_upstream.Port}", seen.Header("Host"));
        Assert.Equal("lab", seen.Header("X-Microagent-Workspace"));
        Assert.Null(seen.Header("X-Forwarded-For"));
        Assert.Equal("Bearer sk-guest", seen.Header("Authorization"));
        Assert.Equal(ChatBody, seen.Text);

        string line = Assert.Single(await h.AuditAsync(1));
        var audit = JsonNode.Parse(line)!;
        Assert.Equal(("allow", "local-allow", 200, "chat", "tiny", "runner-1"), (audit["decision"]!.GetValue<string>(), audit["rule"]!.GetValue<string>(),
            audit["status"]!.GetValue<int>(), audit["capability"]!.GetValue<string>(), audit["model"]!.GetValue<string>(), audit["worker"]!.GetValue<string>()));
        Assert.True(audit["responseBytes"]!.GetValue<long>() > 0);
        Assert.DoesNotContain(Secret, line);
        Assert.DoesNotContain("sk-guest", line);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(h.AuditPath));
    }

    [Fact]
    public async Task A_streamed_answer_reaches_the_client_event_by_event()
    {
        await using var h = Harness(LocalAllow);
        using var http = new HttpClient { BaseAddress = h.BaseAddress };
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = Json("""{"model":"tiny","stream":true,"messages":[{"role":"user","content":"hi"}]}"""),
        };
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType!.MediaType);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        // The upstream holds the rest of the stream until this first event has come through the mediator.
        string? first = await reader.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Contains("\"first\"", first);
        _releaseStream.SetResult();
        string rest = await reader.ReadToEndAsync().WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Contains("data: [DONE]", rest);
        var audit = JsonNode.Parse((await h.AuditAsync(1))[0])!;
        Assert.True(audit["stream"]!.GetValue<bool>());
        Assert.Equal(200, audit["status"]!.GetValue<int>());
    }

    [Fact]
    public async Task A_kept_alive_connection_serves_several_requests_and_resolves_the_runner_each_time()
    {
        int resolved = 0;
        await using var h = Harness(LocalAllow, new TestEndpoints(() =>
        {
            Interlocked.Increment(ref resolved);
            return new ModelEndpoint("127.0.0.1", _upstream.Port, "runner-1", null);
        }));
        using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 1 }) { BaseAddress = h.BaseAddress };
        for (int i = 0; i < 3; i++)
        {
            using var r = await http.GetAsync($"/v1/models?i={i}");
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
            Assert.Contains($"i={i}", await r.Content.ReadAsStringAsync());
        }
        Assert.Equal(1, h.Connections);
        Assert.Equal(3, resolved);
    }

    [Fact]
    public async Task A_policy_file_deny_is_a_403_with_an_openai_error_and_never_reaches_the_runner()
    {
        string file = PolicyFile("""
            default: deny
            rules:
              - { id: models, effect: allow, match: { capability: models } }
              - { id: chat, effect: allow, match: { capability: chat }, limits: { max_tokens: 4 } }
            """);
        await using var h = Harness(new ModelMediationSettings { Mode = ModelMediationMode.Policy, PolicyFile = file });
        using var http = new HttpClient { BaseAddress = h.BaseAddress };
        using var denied = await http.PostAsync("/v1/chat/completions", Json(ChatBody));
        Assert.Equal(HttpStatusCode.Forbidden, denied.StatusCode);
        var error = JsonNode.Parse(await denied.Content.ReadAsStringAsync())!["error"]!;
        Assert.Equal(("policy_denied", "model_policy_denied"), (error["type"]!.GetValue<string>(), error["code"]!.GetValue<string>()));
        Assert.Contains("max_tokens", error["message"]!.GetValue<string>());
        using var embed = await http.PostAsync("/v1/embeddings", Json("""{"model":"tiny","input":"x"}"""));
        Assert.Equal(HttpStatusCode.Forbidden, embed.StatusCode);
        using var models = await http.GetAsync("/v1/models");
        Assert.Equal(HttpStatusCode.OK, models.StatusCode);
        Assert.Equal("/v1/models", Assert.Single(_upstream.Requests).Target);
        var lines = (await h.AuditAsync(3)).Select(l => JsonNode.Parse(l)!).ToList();
        Assert.Equal(new[] { "chat", "default", "models" }, lines.Select(l => l["rule"]!.GetValue<string>()));
        Assert.Equal("max_tokens", lines[0]["limit"]!.GetValue<string>());
        Assert.Equal(new[] { 403, 403, 200 }, lines.Select(l => l["status"]!.GetValue<int>()));
    }

    [Fact]
    public async Task A_policy_file_changed_to_garbage_fails_closed_until_fixed()
    {
        string file = PolicyFile("default: allow\n");
        await using var h = Harness(new ModelMediationSettings { Mode = ModelMediationMode.Policy, PolicyFile = file });
        using var http = new HttpClient { BaseAddress = h.BaseAddress };
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/v1/models")).StatusCode);
        File.WriteAllText(file, "schema_version: microagent.model_policy.v1\ndefault: allow\nbogus: 1\n");
        File.SetLastWriteTimeUtc(file, DateTime.UtcNow.AddSeconds(5));
        using var failed = await http.GetAsync("/v1/models");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, failed.StatusCode);
        Assert.Contains("bogus", await failed.Content.ReadAsStringAsync());
    }

    [Theory]
    [InlineData("allow", 200)]
    [InlineData("deny", 403)]
    [InlineData("slow", 503)]
    [InlineData("garbage", 503)]
    [InlineData("error500", 503)]
    [InlineData("nodecision", 503)]
    public async Task A_policy_url_decides_from_the_facts_alone_and_fails_closed(string behaviour, int status)
    {
        await using var policy = new LoopbackHttpServer(async (req, s, ct) =>
        {
            switch (behaviour)
            {
                case "allow": await LoopbackHttpServer.RespondAsync(s, 200, "application/json", """{"decision":"allow","reason":"ok by test"}""", ct); break;
                case "deny": await LoopbackHttpServer.RespondAsync(s, 200, "application/json", """{"decision":"deny","reason":"not today"}""", ct); break;
                case "slow": await Task.Delay(TimeSpan.FromSeconds(20), ct); break;
                case "garbage": await LoopbackHttpServer.RespondAsync(s, 200, "application/json", "<html>", ct); break;
                case "error500": await LoopbackHttpServer.RespondAsync(s, 500, "text/plain", "boom", ct); break;
                default: await LoopbackHttpServer.RespondAsync(s, 200, "application/json", """{"verdict":"allow"}""", ct); break;
            }
        });
        await using var h = Harness(new ModelMediationSettings { Mode = ModelMediationMode.Policy, PolicyUrl = policy.Url + "/decide",
            PolicyTimeoutMs = behaviour == "slow" ? 500 : 15000 }); // generous where the answer comes: a loaded CI machine is slow
        using var http = new HttpClient { BaseAddress = h.BaseAddress };
        var clock = Stopwatch.StartNew();
        using var response = await http.PostAsync("/v1/chat/completions", Json(ChatBody));
        Assert.Equal(status, (int)response.StatusCode);
        if (behaviour == "slow") Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"took {clock.Elapsed}");
        string text = await response.Content.ReadAsStringAsync();
        if (status == 403) Assert.Contains("not today", text);
        if (status == 503) Assert.Equal("model_policy_unavailable", JsonNode.Parse(text)!["error"]!["code"]!.GetValue<string>());
        if (behaviour == "slow") Assert.Contains("did not answer within 500 ms", text);

        var query = Assert.Single(policy.Requests);
        Assert.Equal(("POST", "/decide"), (query.Method, query.Target));
        Assert.DoesNotContain(Secret, query.Text);
        var facts = JsonNode.Parse(query.Text)!;
        Assert.Equal(("lab", "chat", "tiny", 1, Secret.Length, 8), (facts["workspace"]!.GetValue<string>(), facts["capability"]!.GetValue<string>(),
            facts["model"]!.GetValue<string>(), facts["message_count"]!.GetValue<int>(), facts["text_bytes"]!.GetValue<int>(), facts["max_tokens"]!.GetValue<int>()));
        Assert.StartsWith("mr-", facts["request_id"]!.GetValue<string>());
        Assert.Equal(status == 200 ? 1 : 0, _upstream.Requests.Count);
        Assert.DoesNotContain(Secret, File.ReadAllText(h.AuditPath));
    }

    [Fact]
    public async Task A_runner_that_is_down_missing_or_resetting_is_a_502()
    {
        int closedPort;
        using (var probe = new TcpListener(IPAddress.Loopback, 0)) { probe.Start(); closedPort = ((IPEndPoint)probe.LocalEndpoint).Port; }
        await using var resetter = new LoopbackHttpServer((_, s, _) => { s.Dispose(); return Task.CompletedTask; });
        ModelEndpoint? target = new("127.0.0.1", closedPort, "runner-down", null);
        await using var h = Harness(LocalAllow, new TestEndpoints(() => target));
        using var http = new HttpClient { BaseAddress = h.BaseAddress };
        foreach (var endpoint in new ModelEndpoint?[] { target, null, new("127.0.0.1", resetter.Port, "runner-reset", null) })
        {
            target = endpoint;
            using var response = await http.PostAsync("/v1/chat/completions", Json(ChatBody));
            Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
            Assert.Equal("model_runner_unavailable", JsonNode.Parse(await response.Content.ReadAsStringAsync())!["error"]!["code"]!.GetValue<string>());
        }
        var lines = await h.AuditAsync(3);
        Assert.All(lines, l => Assert.Equal(502, JsonNode.Parse(l)!["status"]!.GetValue<int>()));
    }

    [Fact]
    public async Task A_body_that_is_not_json_is_a_400_and_the_connection_stays_usable()
    {
        await using var h = Harness(LocalAllow);
        using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 1 }) { BaseAddress = h.BaseAddress };
        using var bad = await http.PostAsync("/v1/chat/completions", new StringContent("model=tiny", Encoding.UTF8, "text/plain"));
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        using var good = await http.GetAsync("/v1/models");
        Assert.Equal(HttpStatusCode.OK, good.StatusCode);
        Assert.Equal(1, h.Connections);
    }

    [Fact]
    public async Task A_chunked_request_body_is_decoded_and_forwarded_with_a_length()
    {
        await using var h = Harness(LocalAllow);
        using var http = new HttpClient { BaseAddress = h.BaseAddress };
        var content = new StreamContent(new MemoryStream(Encoding.UTF8.GetBytes(ChatBody)));
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = content };
        request.Headers.TransferEncodingChunked = true;
        using var response = await http.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var seen = Assert.Single(_upstream.Requests);
        Assert.Equal(ChatBody, seen.Text);
        Assert.Null(seen.Header("Transfer-Encoding"));
        Assert.Equal(ChatBody.Length.ToString(), seen.Header("Content-Length"));
    }
}

using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Microagent.EndToEnd.Tests.Models;

/// <summary>
/// Model mediation seen from inside a guest (docs/ARCHITECTURE.md "Model mediation"): a workspace paired with a <c>custom</c> runner
/// (a small OpenAI-compatible server this test runs on loopback) through <c>--model-mediation policy</c>; the guest's requests to
/// <c>$OPENAI_BASE_URL</c> get 403 from a deny policy file and 503 from a policy URL that does not answer in time.
/// </summary>
public sealed class ModelMediationGuestTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("ma-e2e-model-").FullName;
    private readonly List<string> _workspaces = [];

    public void Dispose()
    {
        foreach (string ws in _workspaces) MicroagentCli.RunAsync(["delete", ws, "--force"]).GetAwaiter().GetResult();
        Directory.Delete(_dir, true);
    }

    /// <summary>An OpenAI-compatible runner as a custom runner command: python3's http.server answering /health and chat completions.</summary>
    private string RunnerScript()
    {
        string path = Path.Combine(_dir, "runner.py");
        File.WriteAllText(path, """
            import http.server, json, sys
            class H(http.server.BaseHTTPRequestHandler):
                def _send(self, code, body):
                    b = json.dumps(body).encode()
                    self.send_response(code); self.send_header("Content-Type", "application/json"); self.send_header("Content-Length", str(len(b))); self.end_headers(); self.wfile.write(b)
                def do_GET(self): self._send(200, {"status": "ok", "data": [{"id": "tiny"}]})
                def do_POST(self):
                    self.rfile.read(int(self.headers.get("Content-Length", "0")))
                    self._send(200, {"object": "chat.completion", "choices": [{"message": {"role": "assistant", "content": "hi from runner"}}]})
                def log_message(self, *a): pass
            http.server.HTTPServer((sys.argv[1], int(sys.argv[2])), H).serve_forever()
            """);
        return path;
    }

    private async Task<string> CreateAsync(string name, params string[] mediation)
    {
        string model = Path.Combine(_dir, "tiny.gguf");
        File.WriteAllBytes(model, Encoding.ASCII.GetBytes("GGUF-placeholder"));
        var r = await MicroagentCli.RunAsync([
            "create", name, "--model", model, "--model-runner", "custom",
            "--model-runner-command", "python3", "--model-runner-arg", RunnerScript(), "--model-runner-arg", "{host}", "--model-runner-arg", "{port}",
            "--model-runner-health-path", "/health", .. mediation], timeoutSeconds: 600);
        Assert.True(r.ExitCode == 0, r.Stdout + r.Stderr);
        _workspaces.Add(name);
        var start = await MicroagentCli.RunAsync(["start", name], timeoutSeconds: 600);
        Assert.True(start.ExitCode == 0, start.Stdout + start.Stderr);
        return name;
    }

    private static Task<CliResult> ChatInGuestAsync(string ws) => MicroagentCli.RunAsync(["exec", ws, "--", "sh", "-c",
        "wget -q -O - --header 'Content-Type: application/json' --post-data '{\"model\":\"tiny\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":4}' " +
        "\"$OPENAI_BASE_URL/chat/completions\" 2>&1; echo \" exit=$?\""], timeoutSeconds: 300);

    [Fact]
    public async Task A_deny_policy_file_is_a_403_in_the_guest()
    {
        string policy = Path.Combine(_dir, "deny.yaml");
        File.WriteAllText(policy, "schema_version: microagent.model_policy.v1\ndefault: deny\n");
        string ws = await CreateAsync($"mp-deny-{Environment.ProcessId}", "--model-mediation", "policy", "--model-policy-file", policy);
        var r = await ChatInGuestAsync(ws);
        Assert.Contains("403", r.Stdout);
        Assert.DoesNotContain("hi from runner", r.Stdout);
    }

    [Fact]
    public async Task A_policy_url_that_does_not_answer_in_time_is_a_503_in_the_guest()
    {
        using var slow = new TcpListener(IPAddress.Loopback, 0);
        slow.Start();
        var held = new List<Socket>();
        _ = Task.Run(async () => { while (true) held.Add(await slow.AcceptSocketAsync()); });   // accepts, never answers
        string url = $"http://127.0.0.1:{((IPEndPoint)slow.LocalEndpoint).Port}/decide";
        string ws = await CreateAsync($"mp-slow-{Environment.ProcessId}", "--model-mediation", "policy", "--model-policy-url", url, "--model-policy-timeout", "500ms");
        var r = await ChatInGuestAsync(ws);
        Assert.Contains("503", r.Stdout);
        foreach (var s in held) s.Dispose();
    }
}

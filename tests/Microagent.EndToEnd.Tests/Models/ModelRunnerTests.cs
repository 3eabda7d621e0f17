using System.Diagnostics;
using System.Text.Json;
using static Microagent.EndToEnd.Tests.Models.ModelWorkspace;

namespace Microagent.EndToEnd.Tests.Models;

/// <summary>
/// `--model` end to end through the real CLI (docs/ARCHITECTURE.md "Model runner"): a real llama.cpp server on the tiny GGUF,
/// shared by two workspaces, restarted after kill -9, stopped when both halt; and the custom backend with a node server.
/// </summary>
public sealed class ModelRunnerTests
{
    [Fact]
    public async Task Llamacpp_answers_in_the_guest_is_shared_restarted_after_kill_and_stopped_when_both_halt()
    {
        string server = LlamaServer();
        string[] flags = ["--model", Gguf, "--model-runner", "llamacpp", "--model-gpu", "off", "--model-runner-command", server,
            "--model-runner-arg", "--threads", "--model-runner-arg", "1", "--model-runner-arg", "--ctx-size", "--model-runner-arg", "512"];
        try
        {
            await Ok(["create", "llm1", .. flags]);
            await Ok(["create", "llm2", .. flags]);
            await Ok("start", "llm1");
            await Ok("start", "llm2");
            var runners = await RunnersAsync();
            var shared = Assert.Single(runners);
            Assert.Equal(["llm1", "llm2"], shared.Holders);

            var env = await Ok("exec", "llm1", "--", "sh", "-c", "echo $MICROAGENT_MODEL_URL $OPENAI_BASE_URL");
            Assert.Equal("http://127.0.0.1:11434/v1 http://127.0.0.1:11434/v1\n", env.Stdout);
            string chat = await ChatInGuestAsync("llm1", stream: false);
            using (var doc = JsonDocument.Parse(chat))
                Assert.Equal("assistant", doc.RootElement.GetProperty("choices")[0].GetProperty("message").GetProperty("role").GetString());
            string streamed = await ChatInGuestAsync("llm2", stream: true);
            Assert.Contains("data: ", streamed);
            Assert.Contains("[DONE]", streamed);
            Assert.Contains("chat.completion.chunk", streamed);

            // One holder halts: the runner stays for the other.
            await Ok("halt", "llm2");
            Assert.Equal(["llm1"], Assert.Single(await RunnersAsync()).Holders);

            // kill -9: the dead entry is dropped, and the next start restarts it (another pid, maybe another port).
            using (var runner = Process.GetProcessById(shared.Pid)) runner.Kill();
            await Poll.UntilAsync(() => Gone(shared.Pid), TimeSpan.FromSeconds(30), "the killed runner to exit");
            Assert.Empty(await RunnersAsync());
            await Ok("halt", "llm1");
            await Ok("start", "llm1");
            var restarted = Assert.Single(await RunnersAsync());
            Assert.Equal(shared.Id, restarted.Id);
            Assert.NotEqual(shared.Pid, restarted.Pid);
            Assert.Contains("\"choices\"", await ChatInGuestAsync("llm1", stream: false));

            await Ok("start", "llm2");
            await Ok("halt", "llm1");
            await Ok("halt", "llm2");
            Assert.Empty(await RunnersAsync());
            Assert.True(Gone(restarted.Pid));
            var events = await EventDetailsAsync("llm1");
            Assert.Equal(2, events.Count(e => e.StartsWith("model_worker=attached", StringComparison.Ordinal)));
            // Released once: the halt after the kill -9 had no hold left to release (`model runners` had dropped the dead entry).
            Assert.Equal(1, events.Count(e => e.StartsWith("model_worker=released", StringComparison.Ordinal)));
        }
        finally { await DeleteAsync("llm1", "llm2"); }
    }

    private static bool Gone(int pid)
    {
        try { return File.ReadAllText($"/proc/{pid}/stat").Contains(") Z", StringComparison.Ordinal); }
        catch (IOException) { return true; }
    }

    [Fact]
    public async Task The_custom_backend_runs_an_argv_template_and_the_guest_reaches_it()
    {
        string script = Path.Combine(Files, "openai-stub.js");
        File.WriteAllText(script, """
            // A tiny OpenAI-compatible server: argv[2] = port, argv[3] = the model path it was given.
            const http = require('http');
            const [port, model] = [+process.argv[2], process.argv[3]];
            http.createServer((req, res) => {
              if (req.url === '/health') { res.end('ok'); return; }
              let body = '';
              req.on('data', c => body += c);
              req.on('end', () => {
                const stream = JSON.parse(body || '{}').stream === true;
                if (stream) {
                  res.writeHead(200, { 'Content-Type': 'text/event-stream' });
                  res.write('data: {"object":"chat.completion.chunk","choices":[{"delta":{"content":"stub"}}]}\n\n');
                  res.end('data: [DONE]\n\n');
                } else {
                  res.setHeader('Content-Type', 'application/json');
                  res.end(JSON.stringify({ object: 'chat.completion', model: require('path').basename(model), choices: [{ message: { role: 'assistant', content: 'from the custom runner' } }] }));
                }
              });
            }).listen(port, '127.0.0.1');
            """);
        try
        {
            await Ok("create", "custom1", "--model", Gguf, "--model-runner", "custom", "--model-runner-command", "node",
                "--model-runner-arg", script, "--model-runner-arg", "{port}", "--model-runner-arg", "{model}", "--model-runner-name", "stub",
                "--model-runner-env", "STUB_SECRET=not-stored");
            Assert.DoesNotContain("not-stored", File.ReadAllText(Path.Combine(MicroagentCli.StateDir, "workspaces", "custom1", "config.json")));
            await Ok("start", "custom1");
            string chat = await ChatInGuestAsync("custom1", stream: false);
            Assert.Contains("from the custom runner", chat);
            Assert.Contains("\"model\":\"sha256-", chat); // {model} became the stored blob's path
            Assert.Contains("[DONE]", await ChatInGuestAsync("custom1", stream: true));
            var runner = Assert.Single(await RunnersAsync());
            Assert.Equal(["custom1"], runner.Holders);

            // model stop reclaims it at once and names the workspace; the guest's forward then has no runner.
            var stop = await Ok("model", "stop", Gguf, "--json");
            using (var doc = JsonDocument.Parse(stop.Stdout))
                Assert.Equal("custom1", doc.RootElement.GetProperty("workspaces")[0].GetString());
            var after = await Ma("exec", "custom1", "--", "sh", "-c", "wget -qO- -T 5 $OPENAI_BASE_URL/models");
            Assert.NotEqual(0, after.ExitCode);
            await Ok("halt", "custom1");
            Assert.Contains(await EventDetailsAsync("custom1"), e => e.StartsWith("model_worker=released", StringComparison.Ordinal));
        }
        finally { await DeleteAsync("custom1"); }
    }
}

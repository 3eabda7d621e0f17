// Mediator-vs-direct latency (bench/model-mediator.sh): an OpenAI-compatible upstream on loopback answering a chat completion
// (keep-alive, Content-Length), the same POST sent N times straight to it and N times through the model mediator (local-allow
// and a policy file of a few rules), each over one kept-alive client connection; medians, p95 and the added latency printed.
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Microagent.Models;
using Microagent.Models.Mediation;

int n = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 500;
string dir = Directory.CreateTempSubdirectory("ma-bench-mediator-").FullName;
try
{
    using var cts = new CancellationTokenSource();
    var upstream = Listen(s => ServeUpstreamAsync(s, cts.Token));
    int upPort = ((IPEndPoint)upstream.LocalEndpoint).Port;
    var source = new FixedEndpoint(new ModelEndpoint("127.0.0.1", upPort, "bench-runner", "tiny"));
    string policy = Path.Combine(dir, "policy.yaml");
    File.WriteAllText(policy, """
        schema_version: microagent.model_policy.v1
        default: deny
        rules:
          - { id: no-embeddings, effect: deny, match: { capability: embeddings } }
          - { id: models, effect: allow, match: { capability: models } }
          - { id: chat, effect: allow, match: { capability: chat, model: "tiny*" }, limits: { max_tokens: 256, max_text_bytes: 65536, tools: [] } }
        """);
    var results = new List<(string Name, double[] Ms)>();
    results.Add(("direct to the runner", await MeasureAsync(upPort, n)));
    foreach (var (name, settings) in new[]
    {
        ("mediator local-allow", new ModelMediationSettings { Mode = ModelMediationMode.LocalAllow }),
        ("mediator policy file", new ModelMediationSettings { Mode = ModelMediationMode.Policy, PolicyFile = policy }),
    })
    {
        await using var mediator = ModelMediators.Create(settings, "bench", Path.Combine(dir, $"audit-{results.Count}.jsonl"), _ => { });
        var front = Listen(s => mediator.ServeAsync(new NetworkStream(s, ownsSocket: true), source, cts.Token));
        results.Add((name, await MeasureAsync(((IPEndPoint)front.LocalEndpoint).Port, n)));
        front.Stop();
    }
    double direct = Median(results[0].Ms);
    Console.WriteLine($"model mediator latency ({n} chat completion POSTs each, one kept-alive client connection, {Environment.ProcessorCount} cores)");
    foreach (var (name, ms) in results)
        Console.WriteLine($"  {name,-22}: median {Median(ms),7:0.000} ms   p95 {Pct(ms, 0.95),7:0.000} ms   added {Median(ms) - direct,7:0.000} ms   ratio {Median(ms) / direct:0.00}");
    cts.Cancel();
    upstream.Stop();
}
finally { Directory.Delete(dir, true); }

static async Task<double[]> MeasureAsync(int port, int n)
{
    using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 1, UseProxy = false }) { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
    const string body = """{"model":"tiny","messages":[{"role":"user","content":"Say hi in one word."}],"max_tokens":8}""";
    var times = new double[n];
    for (int i = -50; i < n; i++)
    {
        long t0 = Stopwatch.GetTimestamp();
        using var r = await http.PostAsync("/v1/chat/completions", new StringContent(body, Encoding.UTF8, "application/json"));
        await r.Content.ReadAsByteArrayAsync();
        if (!r.IsSuccessStatusCode) throw new InvalidOperationException($"status {(int)r.StatusCode}");
        if (i >= 0) times[i] = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
    }
    return times;
}

static double Median(double[] v) => Pct(v, 0.5);

static double Pct(double[] v, double p)
{
    var s = v.OrderBy(x => x).ToArray();
    return s[Math.Min(s.Length - 1, (int)Math.Ceiling(p * s.Length) - 1)];
}

static TcpListener Listen(Func<Socket, Task> serve)
{
    var l = new TcpListener(IPAddress.Loopback, 0);
    l.Start(512);
    _ = Task.Run(async () =>
    {
        while (true)
        {
            Socket s;
            try { s = await l.AcceptSocketAsync(); } catch (Exception) { return; }
            s.NoDelay = true;
            _ = Task.Run(() => serve(s));
        }
    });
    return l;
}

static async Task ServeUpstreamAsync(Socket socket, CancellationToken ct)
{
    using var _ = socket;
    using var stream = new NetworkStream(socket);
    var reader = new Http1Reader(stream);
    var limits = new HttpLimits();
    byte[] answer = """{"id":"c1","object":"chat.completion","model":"tiny","choices":[{"index":0,"message":{"role":"assistant","content":"Hi"},"finish_reason":"stop"}]}"""u8.ToArray();
    try
    {
        while (await reader.ReadRequestHeadAsync(limits, ct) is { } head)
        {
            var (framing, length) = Http1.RequestFraming(head.Headers, limits);
            await reader.ReadBodyAsync(framing, length, limits, ct);
            string conn = head.KeepAlive ? "keep-alive" : "close";
            await stream.WriteAsync(Encoding.ASCII.GetBytes($"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {answer.Length}\r\nConnection: {conn}\r\n\r\n"), ct);
            await stream.WriteAsync(answer, ct);
            if (!head.KeepAlive) return;
        }
    }
    catch (Exception) { }
}

sealed class FixedEndpoint(ModelEndpoint endpoint) : IModelEndpointSource
{
    public ValueTask<ModelEndpoint?> ResolveAsync(CancellationToken ct) => ValueTask.FromResult<ModelEndpoint?>(endpoint);
}

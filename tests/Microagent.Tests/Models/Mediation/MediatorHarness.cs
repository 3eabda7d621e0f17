using System.Net;
using System.Net.Sockets;
using System.Text;
using Microagent.Models;
using Microagent.Models.Mediation;

namespace Microagent.Tests.Models.Mediation;

/// <summary>An endpoint source the test points where it likes (null: no runner).</summary>
internal sealed class TestEndpoints(Func<ModelEndpoint?> resolve) : IModelEndpointSource
{
    public ValueTask<ModelEndpoint?> ResolveAsync(CancellationToken ct) => ValueTask.FromResult(resolve());
}

/// <summary>
/// The mediator made by <see cref="ModelMediators"/> for real settings, serving every connection a loopback listener accepts (the
/// supervisor hands it the guest's vsock stream the same way: one stream per connection).
/// </summary>
internal sealed class MediatorHarness : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _cts = new();
    private readonly Task _accept;
    private readonly List<Task> _serving = [];
    private int _connections;

    public MediatorHarness(ModelMediationSettings settings, IModelEndpointSource upstream, string dir, HttpLimits? limits = null)
    {
        AuditPath = Path.Combine(dir, "model-audit.jsonl");
        Mediator = ModelMediators.Create(settings, "lab", AuditPath, line => { lock (Log) Log.Add(line); }, limits);
        _listener.Start();
        _accept = Task.Run(async () =>
        {
            while (!_cts.IsCancellationRequested)
            {
                Socket s;
                try { s = await _listener.AcceptSocketAsync(_cts.Token); } catch (Exception) { return; }
                Interlocked.Increment(ref _connections);
                var serve = Task.Run(async () =>
                {
                    using var stream = new NetworkStream(s, ownsSocket: true);
                    await Mediator.ServeAsync(stream, upstream, _cts.Token);
                });
                lock (_serving) _serving.Add(serve);
            }
        });
    }

    public HttpModelMediator Mediator { get; }
    public string AuditPath { get; }
    public List<string> Log { get; } = [];
    public int Connections => Volatile.Read(ref _connections);
    public Uri BaseAddress => new($"http://127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}");
    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    /// <summary>The audit's lines (waits until <paramref name="count"/> are there: a line is written when its response ends).</summary>
    public async Task<string[]> AuditAsync(int count)
    {
        string[] lines = [];
        await Poll.UntilAsync(() =>
        {
            lines = File.Exists(AuditPath) ? File.ReadAllLines(AuditPath) : [];
            return lines.Length >= count;
        }, TimeSpan.FromSeconds(30), $"{count} audit lines");
        return lines;
    }

    /// <summary>Sends raw bytes and reads until the mediator closes (bounded by <paramref name="timeout"/>).</summary>
    public async Task<string> RawAsync(byte[] request, TimeSpan timeout, bool halfClose = false)
    {
        using var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, Port);
        var s = client.GetStream();
        await s.WriteAsync(request);
        if (halfClose) client.Client.Shutdown(SocketShutdown.Send);
        using var cts = new CancellationTokenSource(timeout);
        var all = new MemoryStream();
        var buf = new byte[8192];
        for (int n; (n = await s.ReadAsync(buf, cts.Token)) > 0;) all.Write(buf, 0, n);
        return Encoding.UTF8.GetString(all.ToArray());
    }

    public async ValueTask DisposeAsync()
    {
        _cts.Cancel();
        _listener.Stop();
        try { await _accept; } catch (Exception) { }
        Task[] serving;
        lock (_serving) serving = [.. _serving];
        try { await Task.WhenAll(serving).WaitAsync(TimeSpan.FromSeconds(10)); } catch (Exception) { }
        await Mediator.DisposeAsync();
        _cts.Dispose();
    }
}

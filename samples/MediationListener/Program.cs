// A host control plane in .NET for the mediation channel: serves work to agents that connect from their workspace
// (guest AF_VSOCK CID 2 port 2048 -> supervisor -> this TCP listener). Uses the library's typed messages and NDJSON reader/writer.
//   dotnet run --project samples/MediationListener -- [PORT] [REQUESTS]
//   microagent exec agent --stdin samples/mediation/agent.py -- sh -c "cat > /tmp/agent.py && python3 /tmp/agent.py"
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Microagent.Mediation;

int port = args.Length > 0 ? int.Parse(args[0], System.Globalization.CultureInfo.InvariantCulture) : 9900;
int requests = args.Length > 1 ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 3;
var listener = new TcpListener(IPAddress.Loopback, port);
listener.Start();
Console.WriteLine($"listening on 127.0.0.1:{port}");
while (true)
{
    var socket = await listener.AcceptSocketAsync();
    _ = Task.Run(() => ServeAsync(socket));
}

async Task ServeAsync(Socket socket)
{
    await using var stream = new NetworkStream(socket, ownsSocket: true);
    var reader = new NdjsonReader(stream);
    using var writer = new NdjsonWriter(stream);
    try
    {
        // A connection that closes without a line is the runtime's readiness probe.
        if (await reader.ReadMessageAsync() is not { Signal.Signal: Signals.Ready } ready) return;
        Console.WriteLine($"agent {ready.Signal!.AgentId} is ready");
        for (int i = 1; i <= requests; i++)
        {
            // request_id is the deduplication key: a request in flight when the channel breaks is sent again after the agent reconnects.
            var request = new WorkRequest { RequestId = $"{ready.Signal.AgentId}-{i}", Task = "add", Payload = JsonSerializer.SerializeToElement(new Dictionary<string, int> { ["a"] = i, ["b"] = 10 }) };
            await writer.WriteAsync(request);
            while (await reader.ReadMessageAsync() is { } m)
            {
                if (m.Result is { } r) Console.WriteLine($"result {r.RequestId}: {r.Status} {r.Output}");
                else if (m.Signal is { } s) Console.WriteLine($"signal {s.Signal} {s.RequestId}");
                if (m.Signal is { Signal: Signals.Completed } c && c.RequestId == request.RequestId) break;
            }
        }
        socket.Shutdown(SocketShutdown.Send); // no more work: the agent exits
    }
    catch (Exception e) when (e is IOException or SocketException or MediationProtocolException)
    {
        Console.WriteLine($"channel broken: {e.Message}");
    }
}

// ExecBench NAME N: prints "library" and "raw" latency lines (median, p95 in ms) for a running workspace.
// ExecBench --write-gguf PATH: writes the tests' tiny random-weight llama GGUF (tests/Shared/TinyGguf.cs) for bench/model.sh.
using System.Diagnostics;
using Microagent;
using Microagent.Agent;
using Microagent.Protocol;
using Microagent.Vsock;
using Microagent.Workspaces;

if (args is ["--write-gguf", var ggufPath])
{
    Microagent.TestSupport.TinyGguf.Write(ggufPath);
    return;
}
string name = args[0];
int n = int.Parse(args[1]);
var manager = new WorkspaceManager(new StatePaths());
string hybrid = Path.Combine(manager.Paths.Workspaces, name, "vsock.sock");
var raw = new AgentClient(ct => HybridVsock.ConnectAsync(hybrid, ProtocolInfo.AgentPort, ct));

async Task<double[]> Measure(Func<Task> op)
{
    for (int i = 0; i < 5; i++) await op(); // warm-up
    var samples = new double[n];
    for (int i = 0; i < n; i++)
    {
        var sw = Stopwatch.StartNew();
        await op();
        samples[i] = sw.Elapsed.TotalMilliseconds;
    }
    Array.Sort(samples);
    return samples;
}

void Report(string label, double[] s) =>
    Console.WriteLine($"{label,-28} median {s[s.Length / 2],8:0.00} ms   p95 {s[(int)Math.Ceiling(s.Length * 0.95) - 1],8:0.00} ms   (n={s.Length})");

Report("raw ping (vsock backend)", await Measure(() => raw.PingAsync()));
Report("raw exec true (AgentClient)", await Measure(() => raw.ExecAsync(new ExecRequest { Argv = ["true"] })));
Report("library ExecAsync true", await Measure(() => manager.ExecAsync(name, new ExecOptions { Command = ["true"] })));

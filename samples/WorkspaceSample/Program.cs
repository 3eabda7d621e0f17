// Usage: dotnet run --project samples/WorkspaceSample -- [NAME]
// Needs MICROAGENT_BIN=<repo>/bin/microagent (the supervisor binary) unless run from bin/.
using System.Text;
using Microagent;
using Microagent.Errors;
using Microagent.Workspaces;

string name = args.Length > 0 ? args[0] : "sample";
var manager = new WorkspaceManager(new StatePaths()); // $MICROAGENT_STATE_DIR or ~/.microagent
using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(3));
try
{
    await manager.CreateAsync(new WorkspaceSpec { Name = name, Profile = "tiny", Setup = ["echo ready > /root/setup"] }, cts.Token);
    var status = await manager.StartAsync(name, ct: cts.Token);
    Console.WriteLine($"{name}: {status.State.WireName()} ({status.Boot?.Accelerator}, kernel {status.Kernel?.Name})");

    var result = await manager.ExecAsync(name, new ExecOptions { Command = ["sh", "-c", "echo hello from $(hostname); cat /root/setup"] }, cts.Token);
    Console.Write(Encoding.UTF8.GetString(result.Stdout ?? []));
    Console.WriteLine($"exit code {result.ExitCode}");

    await manager.HaltAsync(name, ct: cts.Token);
    await foreach (var e in manager.ReadEventsAsync(name, ct: cts.Token))
        Console.WriteLine($"  {e.ObservedAt:HH:mm:ss.fff} {e.Previous?.WireName() ?? "-"} -> {e.State.WireName()}: {e.Detail}");
}
catch (MicroagentException e)
{
    Console.Error.WriteLine($"{e.Kind.WireName()}: {e.Message} ({e.Remediation})");
    return 1;
}
finally
{
    var deleted = await manager.DeleteAsync(name, new DeleteOptions { Force = true });
    Console.WriteLine(deleted.Existed ? $"deleted {name}" : $"{name} was already gone");
}
return 0;

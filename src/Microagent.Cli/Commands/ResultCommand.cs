using System.CommandLine;
using Microagent.Workspaces;

namespace Microagent.Cli.Commands;

/// <summary><c>microagent result NAME</c>: the workload's structured result.</summary>
internal static class ResultCommand
{
    public static Command Create()
    {
        var name = WorkspaceArgs.Name();
        var cmd = new Command("result", """
            Print the structured result of the workspace's workload (--exec): status, exit code, output, times.
            Exits with the workload's exit code.

            Examples:
              microagent wait job && microagent result job --json
            """);
        cmd.Arguments.Add(name);
        cmd.SetAction(async (r, ct) =>
        {
            var result = await new WorkspaceManager(GlobalOptions.Paths(r)).GetResultAsync(r.GetValue(name)!, ct);
            if (r.GetValue(GlobalOptions.Json)) Cli.WriteJson(result, Cli.Json.WorkloadResult);
            else
            {
                Console.Write(result.Stdout);
                Console.Error.Write(result.Stderr);
                Console.Error.WriteLine($"({result.Status}, exit code {result.ExitCode}, {(result.FinishedAt - result.StartedAt).TotalSeconds:0.0} s{(result.Truncated ? ", output truncated" : "")})");
            }
            return result.ExitCode;
        });
        return cmd;
    }
}

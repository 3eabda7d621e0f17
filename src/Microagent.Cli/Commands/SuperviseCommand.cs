using System.CommandLine;
using Microagent.Workspaces;

namespace Microagent.Cli.Commands;

/// <summary>Hidden <c>microagent __supervise NAME</c>: the detached per-workspace supervisor (started by <c>start</c>, never by hand).</summary>
internal static class SuperviseCommand
{
    public static Command Create()
    {
        var name = new Argument<string>("name");
        var cmd = new Command(WorkspaceSupervisor.HiddenVerb, "Run a workspace supervisor (internal)") { Hidden = true };
        cmd.Arguments.Add(name);
        cmd.SetAction((r, ct) => WorkspaceSupervisor.RunAsync(GlobalOptions.Paths(r), r.GetValue(name)!, ct));
        return cmd;
    }
}

using System.CommandLine;
using Microagent.Workspaces;

namespace Microagent.Cli.Commands;

/// <summary><c>microagent profiles</c>: the resource profiles of <see cref="WorkspaceProfile"/>.</summary>
internal static class ProfilesCommand
{
    public static Command Create()
    {
        var cmd = new Command("profiles", """
            List the resource profiles (memory, vCPUs, disk) that --profile names; tiny is the default.

            Examples:
              microagent profiles
              microagent create big --profile large
              microagent profiles --json
            """);
        cmd.SetAction(r =>
        {
            if (r.GetValue(GlobalOptions.Json)) { Cli.WriteJson(WorkspaceProfile.All, Cli.Json.IReadOnlyListWorkspaceProfile); return 0; }
            Render.Table(["PROFILE", "MEMORY", "VCPUS", "DISK"],
                WorkspaceProfile.All.Select(p => (IReadOnlyList<string>)[p.Name + (p == WorkspaceProfile.Tiny ? " *" : ""), $"{p.MemoryMiB} MiB", $"{p.Cpus}", $"{p.DiskMiB} MiB"]));
            return 0;
        });
        return cmd;
    }
}

using System.CommandLine;
using Microagent.Workspaces;

namespace Microagent.Cli.Commands;

/// <summary><c>microagent list</c> (alias <c>ls</c>).</summary>
internal static class ListCommand
{
    public static Command Create()
    {
        var cmd = new Command("list", "List workspaces with their state, size and image.\n\nExamples:\n  microagent ls\n  microagent list --json");
        cmd.Aliases.Add("ls");
        cmd.SetAction(async (r, ct) =>
        {
            var all = await new WorkspaceManager(GlobalOptions.Paths(r)).ListAsync(ct);
            if (r.GetValue(GlobalOptions.Json)) { Cli.WriteJson(all, Cli.Json.IReadOnlyListWorkspaceStatus); return 0; }
            if (all.Count == 0) { Console.WriteLine("no workspaces; create one with `microagent create NAME`"); return 0; }
            Render.Table(["NAME", "STATE", "SINCE", "SIZE", "TTL", "IMAGE", "DETAIL"], all.Select(s => (IReadOnlyList<string>)
            [
                s.Name, Render.State(s.State), Render.Ago(s.Since), $"{s.Config.MemoryMiB}M/{s.Config.Cpus}cpu",
                s.Config.TtlSeconds == 0 ? "-" : $"{s.Config.TtlSeconds}s", s.Config.Image ?? "default",
                (s.Detail ?? "").Split('\n')[0] is { Length: > 60 } d ? d[..60] + "…" : (s.Detail ?? "").Split('\n')[0],
            ]));
            return 0;
        });
        return cmd;
    }
}

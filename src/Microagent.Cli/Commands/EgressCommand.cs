using System.CommandLine;
using System.Text.Json;
using Microagent.Networking;
using Microagent.Workspaces;

namespace Microagent.Cli.Commands;

/// <summary><c>microagent egress NAME [--follow]</c>: the egress audit (one record per network decision).</summary>
internal static class EgressCommand
{
    public static Command Create()
    {
        var name = WorkspaceArgs.Name();
        var follow = new Option<bool>("--follow", "-f") { Description = "Keep printing new decisions until the workspace stops (or Ctrl-C)" };
        var cmd = new Command("egress", """
            Print the workspace's network decisions: every outbound connection and DNS query the host broker allowed or
            refused, with the rule that decided, the name and address, the port, bytes each way and duration (no payloads).
            --json prints a JSON array; with --follow, one JSON object per line.

            Examples:
              microagent egress research
              microagent egress research --follow
              microagent egress research --json | jq '.[] | select(.verdict == "refused")'
            """);
        cmd.Arguments.Add(name);
        cmd.Options.Add(follow);
        cmd.SetAction(async (r, ct) =>
        {
            bool json = r.GetValue(GlobalOptions.Json), f = r.GetValue(follow);
            var manager = new WorkspaceManager(GlobalOptions.Paths(r));
            var list = new List<EgressRecord>();
            await foreach (var e in manager.ReadEgressAsync(r.GetValue(name)!, f, ct))
            {
                if (json && !f) { list.Add(e); continue; }
                if (json) Console.WriteLine(JsonSerializer.Serialize(e, Cli.JsonLine.EgressRecord));
                else Console.WriteLine(Line(e));
            }
            if (json && !f) Cli.WriteJson(list, Cli.Json.ListEgressRecord);
            return 0;
        });
        return cmd;
    }

    private static string Line(EgressRecord e)
    {
        string where = e.Kind == "dns" ? $"{e.Name} → {e.Ip ?? "-"}" : $"{e.Name ?? "-"} {e.Ip}:{e.Port}";
        string traffic = e.Kind == "connect" && e.Verdict == "allowed"
            ? $"  out {Render.Bytes(e.BytesOut)} in {Render.Bytes(e.BytesIn)} {e.DurationMs} ms{(e.End is { } end ? $" ({end})" : "")}" : "";
        return $"{e.Time:yyyy-MM-dd HH:mm:ss.fff}  {e.Kind,-7} {e.Verdict,-8} {where}  [{e.Rule}]{traffic}";
    }
}

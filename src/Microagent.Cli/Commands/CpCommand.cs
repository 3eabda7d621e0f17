using System.CommandLine;
using Microagent.Errors;
using Microagent.Workspaces;

namespace Microagent.Cli.Commands;

/// <summary><c>microagent cp SRC DEST</c>: files and directories into or out of a running workspace, modes kept.</summary>
internal static class CpCommand
{
    public static Command Create()
    {
        var src = new Argument<string>("source") { Description = "Host path, or NAME:PATH in a workspace" };
        var dest = new Argument<string>("destination") { Description = "Host path, or NAME:PATH in a workspace" };
        var cmd = new Command("cp", """
            Copy a file, directory tree or symlink between the host and a running workspace (one side is NAME:PATH).
            Modes are kept. Into an existing directory the source keeps its name; otherwise DEST is the new path.
            A host path containing ':' must start with './' or '/'.

            Examples:
              microagent cp ./data.csv research:/tmp/data.csv
              microagent cp research:/tmp/results ./results
            """);
        cmd.Arguments.Add(src);
        cmd.Arguments.Add(dest);
        cmd.SetAction(async (r, ct) =>
        {
            string s = r.GetValue(src)!, d = r.GetValue(dest)!;
            var (sName, sPath) = Split(s);
            var (dName, dPath) = Split(d);
            var manager = new WorkspaceManager(GlobalOptions.Paths(r));
            CopyResult result = (sName, dName) switch
            {
                (null, { } ws) => await manager.CopyToAsync(ws, sPath, dPath, ct),
                ({ } ws, null) => await manager.CopyFromAsync(ws, sPath, dPath, ct),
                (null, null) => throw MicroagentException.Invalid("neither side names a workspace", "write one side as NAME:PATH"),
                _ => throw MicroagentException.Invalid("both sides name a workspace", "copy through the host in two steps"),
            };
            if (r.GetValue(GlobalOptions.Json)) Cli.WriteJson(result, Cli.Json.CopyResult);
            else Console.WriteLine($"copied {result.Source} → {result.Destination} ({result.Entries} entries, {Render.Bytes(result.Bytes)})");
            return 0;
        });
        return cmd;
    }

    private static (string? Workspace, string Path) Split(string arg)
    {
        if (arg.StartsWith('/') || arg.StartsWith('.')) return (null, arg);
        int colon = arg.IndexOf(':');
        if (colon <= 0) return (null, arg);
        return (WorkspaceName.Validate(arg[..colon]), arg[(colon + 1)..]);
    }
}

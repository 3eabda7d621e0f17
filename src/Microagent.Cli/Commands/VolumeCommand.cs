using System.CommandLine;
using Microagent.Tools;
using Microagent.Volumes;

namespace Microagent.Cli.Commands;

/// <summary><c>microagent volume create|list|inspect|delete</c>: named volumes (<see cref="VolumeStore"/>).</summary>
internal static class VolumeCommand
{
    public static Command Create()
    {
        var cmd = new Command("volume", """
            Manage named volumes: ext4 disks under <state-dir>/volumes that outlive workspaces. Attach one with
            -v NAME:/DIR[:ro|rw] on create or run; a volume attached read-write is in one running workspace at a time.

            Examples:
              microagent volume create data --size 2048
              microagent create lab -v data:/data
              microagent volume list
              microagent volume inspect data --json
              microagent volume delete data
            """);
        cmd.Subcommands.Add(CreateVolume());
        cmd.Subcommands.Add(List());
        cmd.Subcommands.Add(Inspect());
        cmd.Subcommands.Add(Delete());
        return cmd;
    }

    private static Argument<string> Name() => new("name") { Description = "Volume name (letters, digits, '.', '_', '-')" };

    private static Command CreateVolume()
    {
        var name = Name();
        var size = new Option<int?>("--size") { Description = $"Size in MiB ({VolumeStore.MinSizeMiB}-{VolumeStore.MaxSizeMiB}; default {VolumeStore.DefaultSizeMiB}); the file is sparse" };
        var cmd = new Command("create", """
            Create an empty ext4 volume (root-owned, mode 0755 at its top). The file is sparse: it takes host space as it fills.

            Examples:
              microagent volume create data
              microagent volume create cache --size 4096 --json
            """) { name, size };
        cmd.SetAction(async (r, ct) =>
        {
            var info = await new VolumeStore(GlobalOptions.Paths(r)).CreateAsync(r.GetValue(name)!, r.GetValue(size), ct);
            if (r.GetValue(GlobalOptions.Json)) Cli.WriteJson(info, Cli.Json.VolumeInfo);
            else Console.WriteLine($"created volume {info.Name} ({info.SizeMiB} MiB); attach it with -v {info.Name}:/DIR");
            return 0;
        });
        return cmd;
    }

    private static Command List()
    {
        var cmd = new Command("list", "List named volumes, their size and the workspaces that attach them.\n\nExamples:\n  microagent volume ls\n  microagent volume list --json");
        cmd.Aliases.Add("ls");
        cmd.SetAction(r =>
        {
            var all = new VolumeStore(GlobalOptions.Paths(r)).List();
            if (r.GetValue(GlobalOptions.Json)) { Cli.WriteJson(all, Cli.Json.IReadOnlyListVolumeInfo); return 0; }
            if (all.Count == 0) { Console.WriteLine("no volumes (create one with `microagent volume create NAME`)"); return 0; }
            Render.Table(["VOLUME", "SIZE", "IN USE", "USED BY"],
                all.Select(v => (IReadOnlyList<string>)[v.Name, ByteSize.Format((long)v.SizeMiB << 20), v.InUse ? "yes" : "no", v.UsedBy.Count == 0 ? "-" : string.Join(",", v.UsedBy)]));
            return 0;
        });
        return cmd;
    }

    private static Command Inspect()
    {
        var name = Name();
        var cmd = new Command("inspect", "Show a volume: its file, size, creation time, and the workspaces that attach it.\n\nExamples:\n  microagent volume inspect data\n  microagent volume inspect data --json") { name };
        cmd.SetAction(r =>
        {
            var v = new VolumeStore(GlobalOptions.Paths(r)).Inspect(r.GetValue(name)!);
            if (r.GetValue(GlobalOptions.Json)) { Cli.WriteJson(v, Cli.Json.VolumeInfo); return 0; }
            Console.WriteLine($"name      {v.Name}");
            Console.WriteLine($"file      {v.Path}");
            Console.WriteLine($"size      {v.SizeMiB} MiB");
            Console.WriteLine($"created   {v.CreatedAt:u}");
            Console.WriteLine($"in use    {(v.InUse ? "yes (attached to a running workspace)" : "no")}");
            Console.WriteLine($"used by   {(v.UsedBy.Count == 0 ? "-" : string.Join(", ", v.UsedBy))}");
            return 0;
        });
        return cmd;
    }

    private static Command Delete()
    {
        var name = Name();
        var force = new Option<bool>("--force") { Description = "Delete it even though stopped workspaces attach it (their next start fails); never while one runs" };
        var cmd = new Command("delete", """
            Delete a volume and its data. Refused while a running workspace has it attached (halt it first, even with --force),
            and while a stored workspace attaches it unless --force.

            Examples:
              microagent volume delete data
              microagent volume rm data --force
            """) { name, force };
        cmd.Aliases.Add("rm");
        cmd.SetAction(async (r, ct) =>
        {
            var result = await new VolumeStore(GlobalOptions.Paths(r)).DeleteAsync(r.GetValue(name)!, r.GetValue(force), ct);
            if (r.GetValue(GlobalOptions.Json)) Cli.WriteJson(result, Cli.Json.VolumeDeleteResult);
            else Console.WriteLine(!result.Existed ? $"no volume {result.Name}"
                : $"deleted volume {result.Name}{(result.DetachedFrom.Count > 0 ? $" (still named by {string.Join(", ", result.DetachedFrom)})" : "")}");
            return 0;
        });
        return cmd;
    }
}

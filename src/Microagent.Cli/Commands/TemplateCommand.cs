using System.CommandLine;
using Microagent.Tools;
using Microagent.Workspaces;
using Microagent.Workspaces.Templates;

namespace Microagent.Cli.Commands;

/// <summary><c>microagent template list|create|prune</c> (docs/ARCHITECTURE.md "Warm start").</summary>
internal static class TemplateCommand
{
    public static Command Create()
    {
        var cmd = new Command("template", """
            Manage warm-start templates: a VM saved once its agent was ready, before any workspace's identity, network,
            env, mounts or setup. `run` and the first `start` of a new workspace restore the template of their image,
            disk size, memory and vCPUs instead of booting cold (then apply the workspace's own hostname, machine-id,
            clock, entropy, network and setup), and the first cold boot of a new combination makes one. A template is
            never used once the kernel, initramfs, agent or QEMU changed; `--cold` on run/start boots cold.

            Examples:
              microagent template create                     # the default image, 256 MiB, 1 vCPU (what `run` uses)
              microagent template create python:3.11 --memory 512
              microagent template list --json
              microagent template prune                      # those this host would no longer restore
              microagent template prune --all
            """);
        cmd.Subcommands.Add(ListVerb());
        cmd.Subcommands.Add(CreateVerb());
        cmd.Subcommands.Add(PruneVerb());
        return cmd;
    }

    private static Command ListVerb()
    {
        var cmd = new Command("list", "List templates, oldest first: key, image, memory, vCPUs, size, and whether this host would restore it (stale: why not).\n\nExamples:\n" +
            "  microagent template list\n  microagent template list --json");
        cmd.SetAction(async (r, ct) =>
        {
            var list = await new WorkspaceManager(GlobalOptions.Paths(r)).ListTemplatesAsync(ct);
            if (r.GetValue(GlobalOptions.Json)) { Cli.WriteJson(list, Cli.Json.IReadOnlyListTemplateInfo); return 0; }
            if (list.Count == 0) { Console.WriteLine("no templates; the first `microagent run` of an image makes one, or `microagent template create [IMAGE]`"); return 0; }
            Console.WriteLine($"{"KEY",-16}  {"IMAGE",-24} {"MEMORY",7} {"CPUS",4} {"SIZE",9}  {"CREATED",-19}  STATE");
            foreach (var t in list)
                Console.WriteLine($"{t.Manifest.Key,-16}  {Short(t.Manifest.Image ?? t.Manifest.ImageDigest),-24} {t.Manifest.MemoryMiB,4} MiB {t.Manifest.Cpus,4} " +
                    $"{ByteSize.Format(t.SizeBytes),9}  {t.Manifest.Created.UtcDateTime:yyyy-MM-dd HH:mm:ss}  {(t.Stale is { } why ? $"stale: {why}" : "current")}" +
                    $"{(t.UsedBy.Count > 0 ? $" (disks of {string.Join(", ", t.UsedBy)})" : "")}");
            return 0;
        });
        return cmd;
    }

    private static Command CreateVerb()
    {
        var image = new Argument<string?>("image") { Description = "Image reference (default: the embedded busybox image)", Arity = ArgumentArity.ZeroOrOne };
        var memory = new Option<int>("--memory") { Description = WorkspaceArgs.Describe(WorkspaceLimits.MemoryMiB), DefaultValueFactory = _ => 256 };
        var cpus = new Option<int>("--cpus") { Description = WorkspaceArgs.Describe(WorkspaceLimits.Cpus), DefaultValueFactory = _ => 1 };
        var cmd = new Command("create", """
            Make the template `microagent run` of IMAGE with these sizes restores, ahead of its first use: one cold throwaway
            boot that saves the VM once its agent is ready. A current template of that key is kept as it is.

            Examples:
              microagent template create
              microagent template create python:3.11 --memory 512 --cpus 2 --json
            """);
        cmd.Arguments.Add(image);
        cmd.Options.Add(memory);
        cmd.Options.Add(cpus);
        cmd.SetAction(async (r, ct) =>
        {
            var t = await new WorkspaceManager(GlobalOptions.Paths(r)).TemplateCreateAsync(r.GetValue(image), r.GetValue(memory), r.GetValue(cpus), Cli.Progress(r), ct);
            if (r.GetValue(GlobalOptions.Json)) Cli.WriteJson(t, Cli.Json.TemplateInfo);
            else Console.WriteLine($"template {t.Manifest.Key}: {t.Manifest.Image ?? "default image"}, {t.Manifest.MemoryMiB} MiB, {t.Manifest.Cpus} vCPU ({ByteSize.Format(t.SizeBytes)})");
            return 0;
        });
        return cmd;
    }

    private static Command PruneVerb()
    {
        var all = new Option<bool>("--all") { Description = "Remove every template, not only those this host would no longer restore" };
        var cmd = new Command("prune", """
            Remove the templates this host would no longer restore (its kernel, initramfs, agent or QEMU changed), or all of
            them with --all. A disk layer that a workspace's disk still reads stays until that workspace is deleted.

            Examples:
              microagent template prune
              microagent template prune --all --json
            """);
        cmd.Options.Add(all);
        cmd.SetAction(async (r, ct) =>
        {
            var result = await new WorkspaceManager(GlobalOptions.Paths(r)).PruneTemplatesAsync(r.GetValue(all), ct);
            if (r.GetValue(GlobalOptions.Json)) Cli.WriteJson(result, Cli.Json.TemplatePruneResult);
            else Console.WriteLine($"removed {result.Removed.Count} template(s), kept {result.Kept.Count}, reclaimed {ByteSize.Format(result.ReclaimedBytes)}");
            return 0;
        });
        return cmd;
    }

    private static string Short(string s) => s.Length > 24 ? s[..23] + "…" : s;
}

using System.Text.Json.Nodes;
using Microagent.Volumes;

namespace Microagent.Mcp;

/// <summary>Volume tools and the <c>volumes</c> argument: thin calls into <see cref="VolumeStore"/> and <see cref="DiskRequest"/>.</summary>
public sealed partial class ToolCatalog
{
    private const string VolumesDescription =
        "Data disks, each SRC:DST[:ro|rw] (as `-v` on the CLI): SRC an ext4 image file or a .tar/.tar.gz bundle (a host path that must resolve inside " +
        "a host root of this server; bundles are read-only unless :rw), or a named volume (volume_create). Host directories are refused: " +
        "no host filesystem is shared into a VM.";

    private static JsonNode VolumesSchema() => Schema.Strings(VolumesDescription);

    /// <summary>The <c>volumes</c> argument; an image or bundle path must resolve inside a host root (checked and noted for the audit).</summary>
    private List<DiskRequest> VolumeArgs(ToolCall call)
    {
        var disks = call.Strings("volumes").Select(DiskRequest.ParseVolume).ToList();
        foreach (var d in disks.Where(d => d.Kind != DiskKinds.Volume))
        {
            call.HostPaths.Add(d.Source);
            using var pinned = Limits.Host.OpenSource(d.Source, "volumes");
        }
        return disks;
    }

    private void AddVolumeTools()
    {
        Add("volume_create", "Create a named volume", new ToolHints(ReadOnly: false, Destructive: false, Idempotent: false, OpenWorld: false),
            "Create an empty ext4 named volume under the state directory (sparse). Attach it with volumes: [\"NAME:/DIR\"] on workspace_create or workspace_run; it outlives workspaces.",
            Schema.Object(new JsonObject
            {
                ["name"] = Schema.String("Volume name: letters, digits, '.', '_' or '-'."),
                ["volume_size_mib"] = Schema.Integer($"Size of the volume in MiB (default {VolumeStore.DefaultSizeMiB}).", VolumeStore.MinSizeMiB, VolumeStore.MaxSizeMiB),
            }, "name"), McpJson.Context.VolumeInfo,
            async call => await new VolumeStore(_paths).CreateAsync(Name(call), (int?)call.Integer("volume_size_mib", VolumeStore.MinSizeMiB, VolumeStore.MaxSizeMiB), call.Cancellation)
                .ConfigureAwait(false));

        Add("volume_list", "List named volumes", ToolHints.Query, "Named volumes with their size, the workspaces that attach them, and whether a running one has it now.",
            Schema.Object([]), McpJson.Context.VolumeList, _ => Task.FromResult(new VolumeList(new VolumeStore(_paths).List())));

        Add("volume_inspect", "Inspect a named volume", ToolHints.Query, "One named volume: file, size, creation time, the workspaces that attach it.",
            NameOnly("Volume name."), McpJson.Context.VolumeInfo, call => Task.FromResult(new VolumeStore(_paths).Inspect(Name(call))));

        Add("volume_delete", "Delete a named volume", new ToolHints(ReadOnly: false, Destructive: true, Idempotent: true, OpenWorld: false),
            "Delete a named volume and its data. Refused while a running workspace has it attached (always) and while a stored workspace attaches it unless force.",
            Schema.Object(new JsonObject
            {
                ["name"] = Schema.String("Volume name."),
                ["force"] = Schema.Boolean("Delete even though stopped workspaces attach it (their next start then fails)."),
            }, "name"), McpJson.Context.VolumeDeleteResult,
            async call => await new VolumeStore(_paths).DeleteAsync(Name(call), call.Boolean("force"), call.Cancellation).ConfigureAwait(false));
    }
}

using System.Text.Json.Nodes;
using Microagent.Workspaces;
using Microagent.Workspaces.Templates;

namespace Microagent.Mcp;

/// <summary>template_list: the warm-start templates, oldest first.</summary>
public sealed record TemplateList(IReadOnlyList<TemplateInfo> Templates);

/// <summary>Tools of the CLI's <c>template</c> verbs (docs/ARCHITECTURE.md "Warm start"): thin calls into the library.</summary>
public sealed partial class ToolCatalog
{
    private void AddTemplateTools()
    {
        Add("template_list", "List warm-start templates", ToolHints.Query,
            "The warm-start templates (a VM saved once its agent was ready, before any workspace was applied) that workspace_run and a workspace's " +
            "first workspace_start restore instead of booting cold: key, image, sizes, and stale (why this host would not restore it).",
            Schema.Object([]), McpJson.Context.TemplateList,
            async call => new TemplateList(await Workspaces.ListTemplatesAsync(call.Cancellation).ConfigureAwait(false)));

        Add("template_create", "Make a warm-start template", new ToolHints(ReadOnly: false, Destructive: false, Idempotent: true, OpenWorld: true),
            "Make the template workspace_run of an image with this memory and vCPUs restores, ahead of its first use (one cold throwaway boot). " +
            "A current one is returned as it is.",
            Schema.Object(new JsonObject
            {
                ["image"] = Schema.String("Image reference (default: the embedded busybox image)."),
                ["memory_mib"] = Schema.Integer("Guest memory in MiB.", WorkspaceLimits.MemoryMiB),
                ["cpus"] = Schema.Integer("Virtual CPUs.", WorkspaceLimits.Cpus),
            }), McpJson.Context.TemplateInfo,
            call => Workspaces.TemplateCreateAsync(Image(call), (int)(call.Integer("memory_mib", WorkspaceLimits.MemoryMiB) ?? 256),
                (int)(call.Integer("cpus", WorkspaceLimits.Cpus) ?? 1), call.Progress, call.Cancellation));

        Add("template_prune", "Prune warm-start templates", new ToolHints(ReadOnly: false, Destructive: true, Idempotent: true, OpenWorld: false),
            "Remove the templates this host would no longer restore (kernel, initramfs, agent or QEMU changed), or all with all=true. A disk layer " +
            "a workspace's disk still reads stays until that workspace is deleted.",
            Schema.Object(new JsonObject { ["all"] = Schema.Boolean("Remove every template.") }), McpJson.Context.TemplatePruneResult,
            call => Workspaces.PruneTemplatesAsync(call.Boolean("all"), call.Cancellation));
    }
}

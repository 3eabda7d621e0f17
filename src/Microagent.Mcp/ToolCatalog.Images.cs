using System.Text.Json.Nodes;
using Microagent.Errors;
using Microagent.Images;

namespace Microagent.Mcp;

/// <summary>Image tools: thin calls into <see cref="ImageStore"/>.</summary>
public sealed partial class ToolCatalog
{
    private void AddImageTools()
    {
        Add("images_pull", "Pull an image", new ToolHints(ReadOnly: false, Destructive: false, Idempotent: true, OpenWorld: true),
            "Pull an image (registry, oci:PATH[:TAG] or docker-archive:PATH; a PATH must resolve inside a host root of this server) and build its ext4 baseline. Reports progress. Cancelling keeps nothing half-written.",
            Schema.Object(new JsonObject
            {
                ["ref"] = Schema.String("Image reference, e.g. busybox, 127.0.0.1:5000/tools/python:3.11, oci:/path/layout:tag."),
                ["arch"] = Schema.String("Platform architecture to select from an index (default: the host's).", "amd64", "arm64", "386", "arm", "ppc64le", "s390x", "riscv64"),
                ["insecure"] = Schema.Boolean("Allow plain HTTP to this (non-loopback) registry."),
            }, "ref"), McpJson.Context.Baseline,
            async call =>
            {
                string reference = Image(call, "ref") ?? throw new MicroagentException(ErrorKind.Invalid, "images_pull: missing required argument 'ref'") { Field = "ref" };
                var options = new PullOptions
                {
                    Architecture = call.String("arch"),
                    InsecureRegistries = call.Boolean("insecure") ? [ImageReference.Parse(reference).Registry] : [],
                };
                var progress = new SyncProgress<ImageProgress>(p => call.Progress.Report($"{p.Phase}: {p.Message}"));
                return await new ImageStore(_paths).PullAsync(reference, options, progress, call.Cancellation).ConfigureAwait(false);
            });

        Add("images_list", "List images", ToolHints.Query, "Cached images: baselines with their references and the workspaces that use them.",
            Schema.Object([]), McpJson.Context.ImageList, _ => Task.FromResult(new ImageList(new ImageStore(_paths).List())));
    }
}

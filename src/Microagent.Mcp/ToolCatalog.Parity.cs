using System.Text.Json.Nodes;
using Microagent.Images;
using Microagent.Kernels;
using Microagent.Workspaces;

namespace Microagent.Mcp;

/// <summary>profiles_list: the resource profiles.</summary>
public sealed record ProfileList(IReadOnlyList<WorkspaceProfile> Profiles);

/// <summary>Tools of the CLI's image, kernel and profile verbs (<c>image tag</c>, <c>kernel check</c>, <c>profiles</c>): thin calls into the library.</summary>
public sealed partial class ToolCatalog
{
    private void AddParityTools()
    {
        Add("images_tag", "Tag an image", new ToolHints(ReadOnly: false, Destructive: false, Idempotent: true, OpenWorld: false),
            "Give a cached image another name (like docker tag; nothing is pushed). A name that pointed elsewhere moves to this image.",
            Schema.Object(new JsonObject
            {
                ["source"] = Schema.String("A cached image: name as pulled, manifest digest or digest prefix."),
                ["target"] = Schema.String("The new name, e.g. tools:dev or 127.0.0.1:5000/team/tool:1."),
            }, "source", "target"), McpJson.Context.ImageTagResult,
            call => Task.FromResult(new ImageStore(_paths).Tag(call.String("source", required: true)!, call.String("target", required: true)!)));

        Add("kernel_check", "Check the kernel", ToolHints.Query,
            "Whether the kernel boots would use is installed and its image still has its recorded sha256; when not, the problem and what to do.",
            Schema.Object([]), McpJson.Context.KernelCheck, call => new KernelSources(_paths).CheckAsync(call.Cancellation));

        Add("profiles_list", "List resource profiles", ToolHints.Query,
            "The resource profiles (memory, vCPUs, disk) that workspace_create's profile names; tiny is the default.",
            Schema.Object([]), McpJson.Context.ProfileList, _ => Task.FromResult(new ProfileList(WorkspaceProfile.All)));
    }
}

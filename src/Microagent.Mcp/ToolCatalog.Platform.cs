using System.Text.Json.Nodes;

namespace Microagent.Mcp;

/// <summary>
/// The platform arguments of workspace_start and workspace_run (docs/ARCHITECTURE.md "Kernels and boot"): <c>arch</c> and
/// <c>backend</c>. The CLI's <c>--kernel</c> and <c>--supervisor</c> are not here: each names a host file to boot or to run,
/// and what an MCP server may reach on the host is fixed when it is launched, never by a tool call ("MCP server: a trust boundary").
/// </summary>
public sealed partial class ToolCatalog
{
    private static void AddPlatformProperties(JsonObject p)
    {
        p["arch"] = Schema.String("Guest architecture: x86_64 (or amd64), the only one supported; anything else is an unsupported error.");
        p["backend"] = Schema.String("qemu-kvm or qemu-tcg for this boot (default: KVM when a probe boot works under it, else TCG); qemu-kvm where KVM is unusable is an unsupported error.",
            "qemu-kvm", "qemu-tcg");
    }
}

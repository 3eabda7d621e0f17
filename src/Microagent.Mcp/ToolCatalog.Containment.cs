using System.Text.Json.Nodes;

namespace Microagent.Mcp;

/// <summary>The CLI's <c>quarantine</c> verb as a tool (docs/ARCHITECTURE.md "Quarantine"): a thin call into the library.</summary>
public sealed partial class ToolCatalog
{
    private void AddContainmentTools()
    {
        Add("workspace_quarantine", "Quarantine a workspace", new ToolHints(ReadOnly: false, Destructive: true, Idempotent: true, OpenWorld: false),
            "Contain a running or paused workspace, in order, each phase recorded in its containment record (workspace_status: containment): " +
            "durable fence (state quarantined), freeze the vCPUs, sever network egress, DNS and published ports, mediation, vsock proxies and " +
            "console input, a forensic snapshot while frozen (forensic-<time>, not restorable) unless capture is false, stop the VM. " +
            "workspace_start then refuses it until workspace_halt or workspace_kill releases it; the next start boots from the preserved disk. " +
            "Calling it again completes an interrupted or failed quarantine. preview: list the phases that would run, doing nothing.",
            Schema.Object(new JsonObject
            {
                ["name"] = Schema.String("Workspace name (running or paused)."),
                ["reason"] = Schema.String("Why (required; one line, at most 200 characters)."),
                ["capture"] = Schema.Boolean("Take the forensic snapshot (default true); false finishes a quarantine whose capture failed."),
                ["preview"] = Schema.Boolean("Only list the phases that would run; nothing is done."),
            }, "name", "reason"), McpJson.Context.QuarantineResult,
            call =>
            {
                string name = Name(call), reason = call.String("reason", required: true)!;
                bool capture = call.Boolean("capture", fallback: true);
                return call.Boolean("preview")
                    ? Task.FromResult(Workspaces.PlanQuarantine(name, reason, capture))
                    : Workspaces.QuarantineAsync(name, reason, capture, call.Cancellation);
            });
    }
}

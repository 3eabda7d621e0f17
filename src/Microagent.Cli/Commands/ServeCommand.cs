using System.CommandLine;
using Microagent.Mcp;

namespace Microagent.Cli.Commands;

/// <summary><c>microagent serve mcp</c>: the MCP server over stdio, launched by an MCP client.</summary>
internal static class ServeCommand
{
    public static Command Create()
    {
        var cmd = new Command("serve", "Run a server for other programs");
        var hostRoot = new Option<string[]>("--host-root")
        {
            Description = "A directory tools may read and write host paths in (cp, oci:/docker-archive: images); repeatable. " +
                "Default: the server's working directory only",
            AllowMultipleArgumentsPerToken = false,
        };
        var target = new Option<string[]>("--allow-host-target")
        {
            Description = "A host TCP target (HOST:PORT or CIDR:PORT) that vsock mappings and mediation created through MCP may use; repeatable. Default: none",
        };
        var tools = new Option<string>("--tools")
        {
            Description = "Tool set: minimal (run, create, start, exec, cp, status, delete, ping, describe), standard (all but images_pull) or full",
            DefaultValueFactory = _ => McpLimits.Full,
        };
        tools.AcceptOnlyFromAmong(McpLimits.Minimal, McpLimits.Standard, McpLimits.Full);
        var allow = new Option<string[]>("--allow-tool") { Description = "Add a tool to the set; repeatable" };
        var deny = new Option<string[]>("--deny-tool") { Description = "Remove a tool (neither listed nor callable); repeatable; wins over --allow-tool" };
        var readOnly = new Option<bool>("--read-only") { Description = "Offer only tools annotated read-only (status, list, logs, ...)" };
        var mcp = new Command("mcp", """
            Serve the Model Context Protocol over stdio (JSON-RPC on stdin/stdout; diagnostics on stderr).
            Launched by an MCP client, for example in its configuration:
              {"mcpServers": {"microagent": {"command": "/path/to/bin/microagent",
                "args": ["serve", "mcp", "--host-root", "/home/me/project"]}}}
            The server ends when the client closes stdin. Tools: see README.md (or call microagent_describe).

            The server is driven by a model, and what the model reads can steer it (prompt injection). So the limits are set here,
            by whoever launches it, and no tool call can change them:
              host paths    every host path a tool reads or writes (workspace_cp, oci:/docker-archive: image sources) must
                            resolve, after symlinks, inside a --host-root; default: the working directory only.
                            workspace_cp from_guest never writes through a symlink and replaces nothing without overwrite: true.
              host targets  vsock mappings and mediation targets must match an --allow-host-target; default: none.
              tools         --tools, --allow-tool, --deny-tool, --read-only; default: every tool.
            A refused call gets a policy_denied error naming the limit. Calls that touch host paths or targets, and every
            denied call, are appended to STATE_DIR/mcp-audit.jsonl (time, tool, decision, paths, targets; never contents).
            microagent_describe reports the limits in force.

            Examples:
              microagent serve mcp --host-root ~/project --host-root /tmp/scratch
              microagent serve mcp --tools minimal --allow-host-target 127.0.0.1:8080
              microagent serve mcp --read-only
            """);
        foreach (var o in new Option[] { hostRoot, target, tools, allow, deny, readOnly }) mcp.Options.Add(o);
        mcp.SetAction(async (r, ct) =>
        {
            var limits = McpLimits.Create(new McpLimitOptions
            {
                HostRoots = r.GetValue(hostRoot) ?? [],
                HostTargets = r.GetValue(target) ?? [],
                Tools = r.GetValue(tools) ?? McpLimits.Full,
                AllowTools = r.GetValue(allow) ?? [],
                DenyTools = r.GetValue(deny) ?? [],
                ReadOnly = r.GetValue(readOnly),
                WorkingDirectory = Environment.CurrentDirectory,
            });
            await McpServerHost.RunStdioAsync(GlobalOptions.Paths(r), limits, ct);
            return 0;
        });
        cmd.Subcommands.Add(mcp);
        return cmd;
    }
}

using System.CommandLine;
using Microagent.Mcp;

namespace Microagent.Cli.Commands;

/// <summary><c>microagent serve mcp</c>: the MCP server over stdio, launched by an MCP client.</summary>
internal static class ServeCommand
{
    public static Command Create()
    {
        var cmd = new Command("serve", "Run a server for other programs");
        var mcp = new Command("mcp", """
            Serve the Model Context Protocol over stdio (JSON-RPC on stdin/stdout; diagnostics on stderr).
            Launched by an MCP client, for example in its configuration:
              {"mcpServers": {"microagent": {"command": "/path/to/bin/microagent", "args": ["serve", "mcp"]}}}
            The server ends when the client closes stdin. Tools: see README.md (or call microagent.describe).
            """);
        mcp.SetAction(async (r, ct) =>
        {
            await McpServerHost.RunStdioAsync(GlobalOptions.Paths(r), ct);
            return 0;
        });
        cmd.Subcommands.Add(mcp);
        return cmd;
    }
}

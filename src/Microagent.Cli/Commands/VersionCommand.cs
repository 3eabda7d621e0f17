using System.CommandLine;
using System.Reflection;

namespace Microagent.Cli.Commands;

/// <summary><c>microagent version</c>.</summary>
internal static class VersionCommand
{
    public static Command Create()
    {
        var cmd = new Command("version", "Print the microagent version.\n\nExamples:\n  microagent version --json");
        cmd.SetAction(r =>
        {
            string version = typeof(VersionCommand).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "0.0.0";
            if (r.GetValue(GlobalOptions.Json)) Cli.WriteJson(new VersionJson(version, Microagent.Protocol.ProtocolInfo.Version), Cli.Json.VersionJson);
            else Console.WriteLine($"microagent {version} (protocol {Microagent.Protocol.ProtocolInfo.Version})");
            return 0;
        });
        return cmd;
    }
}

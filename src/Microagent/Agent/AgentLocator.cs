using Microagent.Errors;
using Microagent.Tools;

namespace Microagent.Agent;

/// <summary>Finds the NativeAOT guest agent binary that goes into the initramfs as /init.</summary>
internal static class AgentLocator
{
    /// <summary>Overrides the agent binary location.</summary>
    public const string EnvironmentVariable = "MICROAGENT_AGENT";

    /// <summary>File name of the agent binary.</summary>
    public const string FileName = "microagent-agent";

    /// <summary>
    /// $MICROAGENT_AGENT, else next to this program, its <c>runtimes/linux-x64/native/</c> (the NuGet package's native
    /// asset) or one directory up (<see cref="NativeBinaries.SearchDirectories"/>).
    /// </summary>
    public static string Find()
    {
        string? env = Environment.GetEnvironmentVariable(EnvironmentVariable);
        if (!string.IsNullOrEmpty(env))
        {
            if (File.Exists(env)) return Path.GetFullPath(env);
            throw MicroagentException.NotFound($"{EnvironmentVariable}={env} does not exist", $"unset {EnvironmentVariable} or point it at a built agent");
        }
        return NativeBinaries.Find(FileName) ?? throw MicroagentException.NotFound(
            $"the guest agent binary (microagent-agent) was not found next to {AppContext.BaseDirectory} nor in its runtimes/{NativeBinaries.RuntimeIdentifier}/native/",
            $"reference the Microagent package (it carries the agent), set {EnvironmentVariable}, or run `make build` in a checkout (it publishes the agent into bin/)");
    }
}

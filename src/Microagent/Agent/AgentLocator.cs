using Microagent.Errors;

namespace Microagent.Agent;

/// <summary>Finds the NativeAOT guest agent binary that goes into the initramfs as /init.</summary>
public static class AgentLocator
{
    /// <summary>Overrides the agent binary location.</summary>
    public const string EnvironmentVariable = "MICROAGENT_AGENT";

    /// <summary>File name of the agent binary.</summary>
    public const string FileName = "microagent-agent";

    /// <summary>$MICROAGENT_AGENT, else next to this assembly, else one directory up (bin/microagent is NativeAOT: its base directory is bin/).</summary>
    public static string Find()
    {
        string? env = Environment.GetEnvironmentVariable(EnvironmentVariable);
        if (!string.IsNullOrEmpty(env))
        {
            if (File.Exists(env)) return Path.GetFullPath(env);
            throw MicroagentException.NotFound($"{EnvironmentVariable}={env} does not exist", $"unset {EnvironmentVariable} or point it at a built agent");
        }
        string baseDir = AppContext.BaseDirectory;
        foreach (string candidate in new[] { Path.Combine(baseDir, FileName), Path.Combine(baseDir, "..", FileName) })
            if (File.Exists(candidate)) return Path.GetFullPath(candidate);
        throw MicroagentException.NotFound("the guest agent binary (microagent-agent) was not found next to microagent",
            "run `make build` (it publishes the NativeAOT agent into bin/)");
    }
}

using Microagent.Agent;
using Microagent.Tools;

namespace Microagent.Workspaces.Snapshots;

/// <summary>
/// The guest agent build a boot puts into the initramfs: the first 16 hex digits of its binary's sha256. A saved VM state
/// carries the agent that was running, so a snapshot only restores while the host ships the same agent (docs/ARCHITECTURE.md "Snapshots").
/// </summary>
internal static class AgentBuild
{
    /// <summary>The build of the agent binary this host would boot now.</summary>
    public static async Task<string> CurrentAsync(CancellationToken ct = default) =>
        "sha256:" + (await Hashing.Sha256FileAsync(AgentLocator.Find(), ct).ConfigureAwait(false))[..16];
}

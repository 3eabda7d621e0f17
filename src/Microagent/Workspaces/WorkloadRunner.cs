using System.Text;
using Microagent.Agent;
using Microagent.Errors;
using Microagent.Protocol;

namespace Microagent.Workspaces;

/// <summary>
/// The supervisor's guest commands: setup (first boot, each must exit 0, or the boot fails) and the workload (its result is
/// recorded, then the workspace stops). Both run as the image's user in its working directory with the image environment
/// under the workspace environment.
/// </summary>
internal static class WorkloadRunner
{
    /// <summary>Output kept of each setup command (for the failure message).</summary>
    public const long SetupOutputCap = 64 * 1024;

    /// <summary>Output kept of the workload (in <c>result.json</c>).</summary>
    public const long WorkloadOutputCap = 1024 * 1024;

    /// <summary>Runs every setup command in order; throws <see cref="WorkspaceFailedException"/> at the first that does not exit 0.</summary>
    public static async Task RunSetupAsync(AgentClient agent, WorkspaceConfig config, Action<string> log, CancellationToken ct)
    {
        for (int i = 0; i < config.Setup.Count; i++)
        {
            string cmd = config.Setup[i];
            log($"setup {i + 1}/{config.Setup.Count}: {cmd}");
            var result = await agent.ExecAsync(ShellRequest(config, cmd, SetupOutputCap), ct: ct).ConfigureAwait(false);
            if (result.Status != ExecStatuses.Exited || result.ExitCode != 0)
            {
                string stderr = Encoding.UTF8.GetString(result.Stderr ?? []).Trim();
                string stdout = Encoding.UTF8.GetString(result.Stdout ?? []).Trim();
                throw new WorkspaceFailedException(config.Name,
                    $"setup command {i + 1} `{cmd}` failed ({result.Status}, exit {Runner.ExitCodeOf(result)}): {Shorten(stderr.Length > 0 ? stderr : stdout)}",
                    "fix the command and `microagent start` again: setup reruns until it succeeds once");
            }
        }
    }

    /// <summary>Runs the workload; a lost agent connection is a result with status <c>lost</c>, not an exception.</summary>
    public static async Task<WorkloadResult> RunWorkloadAsync(AgentClient agent, WorkspaceConfig config, string cmd, Action<string> log, CancellationToken ct)
    {
        var started = DateTimeOffset.UtcNow;
        log($"workload: {cmd}");
        try
        {
            var r = await agent.ExecAsync(ShellRequest(config, cmd, WorkloadOutputCap), ct: ct).ConfigureAwait(false);
            return new WorkloadResult
            {
                Command = cmd, Status = r.Status, ExitCode = Runner.ExitCodeOf(r), Signal = r.Signal,
                Stdout = Encoding.UTF8.GetString(r.Stdout ?? []), Stderr = Encoding.UTF8.GetString(r.Stderr ?? []),
                Truncated = r.StdoutTruncated || r.StderrTruncated, Error = r.Error,
                StartedAt = started, FinishedAt = DateTimeOffset.UtcNow,
            };
        }
        catch (MicroagentException e)
        {
            return new WorkloadResult { Command = cmd, Status = "lost", ExitCode = 1, Error = e.Message, StartedAt = started, FinishedAt = DateTimeOffset.UtcNow };
        }
    }

    /// <summary>The one guest-command shape of setup and workload: <c>/bin/sh -c CMD</c> through the shared builder.</summary>
    internal static ExecRequest ShellRequest(WorkspaceConfig config, string cmd, long cap) => GuestCommand.Shell(config, cmd, cap).ToRequest();

    /// <summary>At most 2000 characters (state details and messages stay readable).</summary>
    public static string Shorten(string s) => s.Length <= 2000 ? s : s[..2000] + "…";
}

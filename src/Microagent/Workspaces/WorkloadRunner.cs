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

    /// <summary>The agent job id of the workload (<see cref="ExecRequest.JobId"/>).</summary>
    public const string WorkloadJobId = "workload";

    /// <summary>How long the workload's connection may stay lost (the agent unreachable while the VM lives) before the result is <c>lost</c>.</summary>
    public static readonly TimeSpan WorkloadReattachWindow = TimeSpan.FromMinutes(5);

    private static readonly TimeSpan AttachedAfter = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Runs the workload as the agent job <see cref="WorkloadJobId"/>, or attaches to it when the guest already runs it: a
    /// restored snapshot has the workload's process in its memory, so it is never started twice, and a capture or restore
    /// that resets the connection is followed by a re-attach (docs/ARCHITECTURE.md "Snapshots"). The result comes from
    /// whichever connection is open when the job ends. A connection lost for longer than <see cref="WorkloadReattachWindow"/>
    /// (or an agent that refuses the job) is a result with status <c>lost</c>, not an exception; the supervise loop records
    /// the VM's own end independently.
    /// </summary>
    public static async Task<WorkloadResult> RunWorkloadAsync(AgentClient agent, WorkspaceConfig config, string cmd, Action<string> log, CancellationToken ct,
        bool restored = false, TimeProvider? time = null)
    {
        time ??= TimeProvider.System;
        var started = DateTimeOffset.UtcNow;
        log(restored ? $"workload (restored with the guest, re-attaching): {cmd}" : $"workload: {cmd}");
        var request = ShellRequest(config, cmd, WorkloadOutputCap);
        request.JobId = WorkloadJobId;
        long? lostSince = null;
        while (true)
        {
            long attempt = time.GetTimestamp();
            try
            {
                var r = await agent.ExecAsync(request, ct: ct).ConfigureAwait(false);
                return new WorkloadResult
                {
                    Command = cmd, Status = r.Status, ExitCode = Runner.ExitCodeOf(r), Signal = r.Signal,
                    Stdout = Encoding.UTF8.GetString(r.Stdout ?? []), Stderr = Encoding.UTF8.GetString(r.Stderr ?? []),
                    Truncated = r.StdoutTruncated || r.StderrTruncated, Error = r.Error,
                    StartedAt = started, FinishedAt = DateTimeOffset.UtcNow,
                };
            }
            catch (MicroagentException e) when (e.Retryable && !ct.IsCancellationRequested)
            {
                // An attempt that stayed attached for a while was not lost all along: the window starts again.
                if (lostSince is null || time.GetElapsedTime(attempt) > AttachedAfter) lostSince = time.GetTimestamp();
                if (time.GetElapsedTime(lostSince.Value) >= WorkloadReattachWindow)
                    return Lost(cmd, started, $"{e.Message} (no answer for {WorkloadReattachWindow.TotalMinutes:0} min)");
                log($"workload connection lost ({e.Message}); re-attaching");
                await Task.Delay(TimeSpan.FromSeconds(1), time, ct).ConfigureAwait(false);
            }
            catch (MicroagentException e)
            {
                return Lost(cmd, started, e.Message);
            }
        }
    }

    private static WorkloadResult Lost(string cmd, DateTimeOffset started, string error) =>
        new() { Command = cmd, Status = "lost", ExitCode = 1, Error = error, StartedAt = started, FinishedAt = DateTimeOffset.UtcNow };

    /// <summary>The one guest-command shape of setup and workload: <c>/bin/sh -c CMD</c> through the shared builder.</summary>
    internal static ExecRequest ShellRequest(WorkspaceConfig config, string cmd, long cap) => GuestCommand.Shell(config, cmd, cap).ToRequest();

    /// <summary>At most 2000 characters (state details and messages stay readable).</summary>
    public static string Shorten(string s) => s.Length <= 2000 ? s : s[..2000] + "…";
}

using Microagent.Protocol;

namespace Microagent.Guest.Exec;

/// <summary>
/// Execs that outlive their connection (<see cref="ExecRequest.JobId"/>; docs/ARCHITECTURE.md "Snapshots", the workload): the
/// first request of an id starts the command, every later one waits for the same result. The table lives in the agent's
/// memory, so a restored snapshot brings back its jobs with their processes, and the host re-attaches instead of running the
/// workload again. Results are kept for the agent's life (one workload per boot; its output is capped by the request).
/// </summary>
internal sealed class ExecJobs(ExecEngine engine)
{
    private readonly Dictionary<string, Task<ExecResult>> _jobs = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();

    /// <summary>The job <paramref name="request"/> names: started now when the id is new, otherwise the one already running or done.</summary>
    public Task<ExecResult> StartOrAttach(ExecRequest request, out bool started)
    {
        string id = request.JobId ?? throw new ArgumentException("the request has no job id", nameof(request));
        lock (_gate)
        {
            started = !_jobs.TryGetValue(id, out var job);
            if (job is null)
            {
                // Not tied to any connection: only the command's own end (or its timeout) ends it.
                job = Task.Run(() => engine.RunAsync(request, ct: CancellationToken.None));
                _jobs[id] = job;
            }
            return job;
        }
    }
}

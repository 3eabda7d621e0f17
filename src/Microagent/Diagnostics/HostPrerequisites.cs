using System.Collections.Concurrent;
using Microagent.Errors;
using Microagent.Workspaces;

namespace Microagent.Diagnostics;

/// <summary>
/// The first-use check of what the host must provide (QEMU, e2fsprogs, kmod, a kernel): <see cref="WorkspaceManager"/>
/// runs <see cref="Doctor.CheckPrerequisitesAsync"/> at its first create, start or run over a state directory and fails
/// with the same remediation <c>doctor</c> gives, before any work that would fail later inside a detached supervisor.
/// A pass is remembered for the life of the process; a failure is not (the user may install and retry).
/// </summary>
internal static class HostPrerequisites
{
    private static readonly ConcurrentDictionary<string, bool> Passed = new(StringComparer.Ordinal);

    /// <summary>Returns when nothing failed; otherwise throws <see cref="ErrorKind.Unsupported"/> naming each failed check and its remediation.</summary>
    public static async Task EnsureAsync(StatePaths paths, CancellationToken ct)
    {
        if (Passed.ContainsKey(paths.Root)) return;
        var report = await new Doctor(paths).CheckPrerequisitesAsync(ct).ConfigureAwait(false);
        var failed = report.Checks.Where(c => c.Status == CheckStatus.Fail).ToList();
        if (failed.Count == 0)
        {
            Passed[paths.Root] = true;
            return;
        }
        throw Failure(failed);
    }

    /// <summary>The error for failed checks: each check's detail in the message, their distinct remediations joined.</summary>
    public static MicroagentException Failure(IReadOnlyList<DoctorCheck> failed) => MicroagentException.Unsupported(
        $"this host lacks what microagent needs: {string.Join("; ", failed.Select(c => $"{c.Name}: {c.Detail}"))}",
        string.Join("; ", failed.Select(c => c.Remediation).OfType<string>().Distinct(StringComparer.Ordinal))
        + " (`microagent doctor`, or Doctor.RunAsync, lists every check)");
}

using Microagent.Errors;

namespace Microagent.Workspaces;

/// <summary>The supervise loop's side of a quarantine (docs/ARCHITECTURE.md "Quarantine"); the phases are <see cref="Containment.QuarantineSequence"/>'s.</summary>
internal sealed partial class SupervisionLoop
{
    /// <summary>A <c>quarantine</c> control request (docs/ARCHITECTURE.md "Quarantine"); true when the VM was stopped (the loop ends).</summary>
    private async Task<bool> QuarantineAsync(SupervisorCommand queued, CancellationToken ct)
    {
        var request = queued.Request;
        try
        {
            if (request.Stage == QuarantineStages.Finish)
            {
                if (!_quarantine.Fenced)
                {
                    queued.Reply.TrySetResult(new ControlResponse { Ok = false, Error = "the quarantine was not begun on this boot (stage contain first)" });
                    return false;
                }
                var (reply, stopped) = await _quarantine.FinishAsync(ct).ConfigureAwait(false);
                queued.Reply.TrySetResult(reply);
                return stopped;
            }
            queued.Reply.TrySetResult(await _quarantine.ContainAsync(request.Reason ?? "", request.Capture ?? true, _freeze.IsPaused || _hostPaused, ct).ConfigureAwait(false));
            return false;
        }
        catch (Exception e) when (e is MicroagentException or IOException && !ct.IsCancellationRequested)
        {
            log($"quarantine failed: {e.Message}");
            queued.Reply.TrySetResult(new ControlResponse { Ok = false, Error = $"quarantine failed: {e.Message}" });
            return false;
        }
    }

    /// <summary>The VM ends while quarantined: QEMU is stopped, the stop phase records why, and the state stays quarantined.</summary>
    private async Task<string> QuarantinedEndAsync(string detail)
    {
        log($"quarantined VM ends: {detail}");
        await vm.DisposeAsync().ConfigureAwait(false);
        _quarantine.VmGone(detail);
        return "quarantined";
    }
}

/// <summary>A boot without anything to sever (unit tests of the loop).</summary>
internal sealed class NothingToSever : Containment.IQuarantineHost
{
    /// <summary>The one instance.</summary>
    public static NothingToSever Instance { get; } = new();

    /// <inheritdoc />
    public string SeverNetwork() => "nothing to sever";
    /// <inheritdoc />
    public string? SeverMediation() => null;
    /// <inheritdoc />
    public string? SeverModel() => null;
    /// <inheritdoc />
    public string? SeverVsock() => null;
}


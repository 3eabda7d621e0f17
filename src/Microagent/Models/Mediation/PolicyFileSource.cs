namespace Microagent.Models.Mediation;

/// <summary>
/// A policy file, re-read when its modification time or size changes (checked per request: a stat). A version that does not
/// parse (or a file that is gone) makes decisions <c>error</c> (503, fail closed) until a good one is there.
/// </summary>
internal sealed class PolicyFileSource
{
    private readonly string _path;
    private readonly Action<string> _log;
    private readonly Lock _gate = new();
    private (DateTime Mtime, long Size) _stamp;
    private ModelPolicy? _policy;
    private string? _error;

    /// <summary>Reads <paramref name="path"/> now; a bad file throws (the boot fails, naming the line).</summary>
    public PolicyFileSource(string path, Action<string> log)
    {
        _path = path;
        _log = log;
        _stamp = Stamp();
        _policy = ModelPolicy.Load(path);
    }

    /// <summary>The current policy, or the reason there is none.</summary>
    public (ModelPolicy? Policy, string? Error) Current()
    {
        var stamp = Stamp();
        lock (_gate)
        {
            if (stamp == _stamp) return (_policy, _error);
            _stamp = stamp;
            try
            {
                _policy = ModelPolicy.Load(_path);
                _error = null;
                _log($"model policy {_path} re-read: {_policy.Rules.Count} rules, default {_policy.Default.ToString().ToLowerInvariant()}");
            }
            catch (Errors.MicroagentException e)
            {
                _policy = null;
                _error = $"the policy file does not load: {e.Message}";
                _log($"model policy {_path}: {e.Message}; requests are refused (503) until it is fixed");
            }
            return (_policy, _error);
        }
    }

    private (DateTime, long) Stamp()
    {
        var info = new FileInfo(_path);
        return info.Exists ? (info.LastWriteTimeUtc, info.Length) : (DateTime.MinValue, -1);
    }
}

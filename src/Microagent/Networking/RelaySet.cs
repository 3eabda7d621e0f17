using System.Collections.Concurrent;

namespace Microagent.Networking;

/// <summary>
/// The live relays of one broker or publisher, so severing can abort them all (docs/ARCHITECTURE.md "Networking", "Severing").
/// Invariant: a relay is in the set exactly while <see cref="RunAsync"/> runs it; one started after <see cref="AbortAll"/> is aborted at once.
/// </summary>
internal sealed class RelaySet
{
    private readonly ConcurrentDictionary<long, ByteRelay> _relays = new();
    private long _ids;
    private volatile string? _aborted;

    /// <summary>Relays running now.</summary>
    public int Count => _relays.Count;

    /// <summary>Runs <paramref name="relay"/> to its end, registered so that <see cref="AbortAll"/> reaches it.</summary>
    public async Task RunAsync(ByteRelay relay)
    {
        long id = Interlocked.Increment(ref _ids);
        _relays[id] = relay;
        try
        {
            if (_aborted is { } reason) relay.Abort(reason);
            await relay.RunAsync().ConfigureAwait(false);
        }
        finally { _relays.TryRemove(id, out _); }
    }

    /// <summary>Aborts every relay running now and every one started later.</summary>
    public void AbortAll(string reason)
    {
        _aborted = reason;
        foreach (var (id, relay) in _relays)
        {
            relay.Abort(reason);
            _relays.TryRemove(id, out _);
        }
    }
}

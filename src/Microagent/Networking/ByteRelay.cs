using System.Buffers;
using System.Net.Sockets;

namespace Microagent.Networking;

/// <summary>
/// Relays bytes both ways between two connected sockets, counting them (docs/ARCHITECTURE.md "Networking"): bounded pooled
/// buffers, at most one per direction and rented only while a chunk is in flight (an idle relay waits with a zero-byte
/// receive), a read issued only after the previous chunk was sent (so a slow reader throttles the writer), half-close on end
/// of stream, and a reset on either side aborting both. <see cref="Abort"/> ends it from outside (a cap, severing).
/// </summary>
internal sealed class ByteRelay
{
    private const int ChunkBytes = 64 * 1024;
    private readonly Socket _a;
    private readonly Socket _b;
    private readonly Func<int, bool, bool> _admit;
    private readonly CancellationTokenSource _cts = new();
    private long _aToB;
    private long _bToA;
    private string? _end;

    /// <summary>A relay between <paramref name="a"/> (the guest side) and <paramref name="b"/>; <paramref name="admit"/> is asked before each chunk is forwarded, with its size and whether it goes a→b (false = stop: a byte cap).</summary>
    public ByteRelay(Socket a, Socket b, Func<int, bool, bool> admit)
    {
        _a = a;
        _b = b;
        _admit = admit;
    }

    /// <summary>Bytes from <c>a</c> to <c>b</c> so far.</summary>
    public long AToB => Interlocked.Read(ref _aToB);
    /// <summary>Bytes from <c>b</c> to <c>a</c> so far.</summary>
    public long BToA => Interlocked.Read(ref _bToA);
    /// <summary>Why it ended when not by an orderly close (<c>reset</c>, a cap, <c>severed</c>); null otherwise.</summary>
    public string? End => Volatile.Read(ref _end);

    /// <summary>Runs until both directions ended.</summary>
    public Task RunAsync() => Task.WhenAll(PumpAsync(_a, _b, true), PumpAsync(_b, _a, false));

    /// <summary>Ends both sides at once (the TCP side with a reset); <paramref name="why"/> becomes <see cref="End"/> unless one is set.</summary>
    public void Abort(string why)
    {
        Interlocked.CompareExchange(ref _end, why, null);
        try { _cts.Cancel(); } catch (ObjectDisposedException) { }
        Close(_a, _b);
    }

    private async Task PumpAsync(Socket from, Socket to, bool outbound)
    {
        try
        {
            while (true)
            {
                await from.ReceiveAsync(Memory<byte>.Empty, SocketFlags.None, _cts.Token).ConfigureAwait(false);
                byte[] buffer = ArrayPool<byte>.Shared.Rent(ChunkBytes);
                try
                {
                    int n = await from.ReceiveAsync(buffer.AsMemory(0, ChunkBytes), SocketFlags.None, _cts.Token).ConfigureAwait(false);
                    if (n == 0) break;
                    if (!_admit(n, outbound)) { Abort("max-total-bytes"); return; }
                    int sent = 0;
                    while (sent < n) sent += await to.SendAsync(buffer.AsMemory(sent, n - sent), SocketFlags.None, _cts.Token).ConfigureAwait(false);
                    Interlocked.Add(ref outbound ? ref _aToB : ref _bToA, n);
                }
                finally { ArrayPool<byte>.Shared.Return(buffer); }
            }
            to.Shutdown(SocketShutdown.Send);
        }
        catch (Exception)
        {
            Abort("reset");
        }
    }

    /// <summary>Closes both sockets; a TCP socket with linger 0 (a reset, not a quiet close).</summary>
    public static void Close(params Socket[] sockets)
    {
        foreach (var s in sockets)
        {
            if (s.ProtocolType == ProtocolType.Tcp) { try { s.LingerState = new LingerOption(true, 0); } catch (Exception) { } }
            try { s.Shutdown(SocketShutdown.Both); } catch (Exception) { }
            try { s.Close(); } catch (Exception) { }
        }
    }
}

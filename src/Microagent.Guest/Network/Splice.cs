using System.Buffers;
using System.Net.Sockets;

namespace Microagent.Guest.Network;

/// <summary>
/// Copies bytes both ways between two connected stream sockets (any family) with pooled buffers of
/// <see cref="BufferBytes"/> each, so a connection holds at most two buffers. Half-close aware: end of stream from one side
/// becomes shutdown(SHUT_WR) toward the other, and the copy the other way goes on. A reset or error on either side aborts
/// both (the peer that is still open sees a reset). Ends when both directions are done.
/// </summary>
internal static class Splice
{
    /// <summary>Bytes in one direction's buffer.</summary>
    public const int BufferBytes = 64 * 1024;

    /// <summary>Relays until both directions end; disposes both sockets. Returns (bytes a→b, bytes b→a).</summary>
    public static async Task<(long AToB, long BToA)> RunAsync(Socket a, Socket b, CancellationToken ct = default)
    {
        using var abort = CancellationTokenSource.CreateLinkedTokenSource(ct);
        Task<long> ab = CopyAsync(a, b, abort);
        Task<long> ba = CopyAsync(b, a, abort);
        try
        {
            await Task.WhenAll(ab, ba).ConfigureAwait(false);
        }
        catch (Exception)
        {
            // One direction failed: the other was cancelled; both sockets are torn down below.
            Reset(a);
            Reset(b);
        }
        a.Dispose();
        b.Dispose();
        return (ab.IsCompletedSuccessfully ? ab.Result : -1, ba.IsCompletedSuccessfully ? ba.Result : -1);
    }

    private static async Task<long> CopyAsync(Socket from, Socket to, CancellationTokenSource abort)
    {
        byte[] buffer = ArrayPool<byte>.Shared.Rent(BufferBytes);
        long total = 0;
        try
        {
            while (true)
            {
                int n = await from.ReceiveAsync(buffer.AsMemory(0, BufferBytes), SocketFlags.None, abort.Token).ConfigureAwait(false);
                if (n == 0) break;
                int sent = 0;
                while (sent < n) sent += await to.SendAsync(buffer.AsMemory(sent, n - sent), SocketFlags.None, abort.Token).ConfigureAwait(false);
                total += n;
            }
            try { to.Shutdown(SocketShutdown.Send); } catch (SocketException) { }
            return total;
        }
        catch
        {
            await abort.CancelAsync().ConfigureAwait(false);
            throw;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>Closes with SO_LINGER 0, so a TCP peer gets a reset instead of a clean end of stream.</summary>
    public static void Reset(Socket s)
    {
        try { s.LingerState = new LingerOption(true, 0); } catch (SocketException) { } catch (ObjectDisposedException) { }
        s.Dispose();
    }
}

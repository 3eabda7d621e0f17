using Microagent.Interop;

namespace Microagent.Vsock;

/// <summary>
/// Waits on one queue's kick eventfd on its own thread and posts coalesced kicks to the device loop.
/// Owns the descriptor: <see cref="Stop"/> wakes the thread by signalling the eventfd itself, and the thread disposes it.
/// A read failure other than the stop is a device fault: it is posted to the loop as a thrown <see cref="VhostUserProtocolException"/>.
/// </summary>
internal sealed class KickWatcher
{
    private readonly SafeFileDescriptor _fd;
    private readonly Action _onKick;
    private readonly int _queue;
    private volatile bool _stopped;
    private int _pending;

    /// <summary>Starts watching <paramref name="fd"/>; <paramref name="post"/> delivers a kick to the loop (may block when the loop is saturated).</summary>
    public KickWatcher(SafeFileDescriptor fd, int queue, Action<Action> post, Action onKick)
    {
        _fd = fd;
        _queue = queue;
        _onKick = onKick;
        var thread = new Thread(() => Run(post)) { IsBackground = true, Name = $"vsock-kick-{queue}" };
        thread.Start();
    }

    private void Run(Action<Action> post)
    {
        try
        {
            while (true)
            {
                EventFd.Wait(_fd);
                if (_stopped) return;
                if (Interlocked.Exchange(ref _pending, 1) == 0)
                    post(() => { Volatile.Write(ref _pending, 0); if (!_stopped) _onKick(); });
            }
        }
        catch (Exception) when (_stopped) { }
        catch (Exception e)
        {
            string reason = $"kick descriptor of queue {_queue} failed: {e.Message}";
            post(() => { if (!_stopped) throw new VhostUserProtocolException(reason); });
        }
        finally
        {
            _fd.Dispose();
        }
    }

    /// <summary>Stops the thread; it closes the descriptor.</summary>
    public void Stop()
    {
        _stopped = true;
        EventFd.TrySignal(_fd);
    }
}

using Microagent.Interop;

namespace Microagent.Vsock;

/// <summary>
/// Waits on one queue's kick eventfd on its own thread and posts coalesced kicks to the device loop.
/// Owns the descriptor: <see cref="Stop"/> wakes the thread by signalling the eventfd itself, and the thread closes it.
/// </summary>
internal sealed class KickWatcher
{
    private readonly int _fd;
    private readonly Action _onKick;
    private readonly int _queue;
    private readonly Action<string> _log;
    private volatile bool _stopped;
    private int _pending;

    /// <summary>Starts watching <paramref name="fd"/>; <paramref name="post"/> delivers a kick to the loop (may block when the loop is saturated).</summary>
    public KickWatcher(int fd, int queue, Action<Action> post, Action onKick, Action<string> log)
    {
        _fd = fd;
        _queue = queue;
        _log = log;
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
        catch (Exception e) { _log($"vhost-user: kick descriptor of queue {_queue} failed ({e.Message}); the queue runs only on other events"); }
        finally
        {
            FileDescriptors.Close(_fd);
        }
    }

    /// <summary>Stops the thread; it closes the descriptor.</summary>
    public void Stop()
    {
        _stopped = true;
        EventFd.TrySignal(_fd);
    }
}

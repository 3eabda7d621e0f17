using Microagent.Interop;

namespace Microagent.Guest.Exec;

/// <summary>Delivers the raw wait status of children started through it.</summary>
internal interface IChildWaiter
{
    /// <summary>
    /// Runs <paramref name="start"/> (returns a child pid, or a value ≤ 0 when nothing was started) and
    /// registers the child so that its exit status is delivered even if it ends before this returns.
    /// </summary>
    (int Pid, Task<int>? Exit) Start(Func<int> start);
}

/// <summary>
/// The single reaper of a PID 1 (or child subreaper): one thread blocks in <c>waitpid(-1)</c>, routes
/// statuses of registered children to their waiters and silently reaps everything else (orphans).
/// Invariant: a child is registered under <see cref="_gate"/> in the same critical section that
/// started it, and routing takes <see cref="_gate"/>, so an exit can never be routed before its waiter exists.
/// </summary>
internal sealed class ReapAllWaiter : IChildWaiter
{
    private readonly object _gate = new();
    private readonly Dictionary<int, TaskCompletionSource<int>> _waiters = new();
    private readonly AutoResetEvent _childStarted = new(false);
    private readonly Func<(int Pid, int Status)> _wait;
    private long _orphansReaped;

    /// <summary>Creates the reaper; <paramref name="wait"/> replaces <c>waitpid(-1)</c> in tests.</summary>
    public ReapAllWaiter(Func<(int Pid, int Status)>? wait = null)
    {
        _wait = wait ?? (() => Wait.WaitPid(-1));
    }

    /// <summary>Number of exits reaped that belonged to no registered child.</summary>
    public long OrphansReaped => Interlocked.Read(ref _orphansReaped);

    /// <summary>Starts the reaper thread.</summary>
    public ReapAllWaiter StartReaper()
    {
        new Thread(Loop, 256 * 1024) { IsBackground = true, Name = "reaper" }.Start();
        return this;
    }

    /// <inheritdoc />
    public (int Pid, Task<int>? Exit) Start(Func<int> start)
    {
        lock (_gate)
        {
            int pid = start();
            if (pid <= 0) return (pid, null);
            var tcs = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiters[pid] = tcs;
            _childStarted.Set();
            return (pid, tcs.Task);
        }
    }

    /// <summary>Delivers one reaped exit: to its waiter when registered, otherwise counts an orphan.</summary>
    public void Route(int pid, int status)
    {
        lock (_gate)
        {
            if (_waiters.Remove(pid, out TaskCompletionSource<int>? tcs)) tcs.SetResult(status);
            else Interlocked.Increment(ref _orphansReaped);
        }
    }

    private void Loop()
    {
        while (true)
        {
            try
            {
                (int pid, int status) = _wait();
                if (pid > 0) { Route(pid, status); continue; }
                // No children at all (ECHILD): park until one is started. An orphan can only be
                // reparented to us by a descendant, which requires a living child first.
                if (pid == -Errno.ECHILD) _childStarted.WaitOne(1000);
                else Thread.Sleep(50);
            }
            catch (Exception e)
            {
                Log.Error($"reaper: {e.Message}");
                Thread.Sleep(50);
            }
        }
    }
}

/// <summary>
/// Waits for each child by its own pid on a small dedicated thread. For hosts where this process is
/// not the reaper of everything (unit tests inside a test host that runs other children).
/// </summary>
internal sealed class PerChildWaiter : IChildWaiter
{
    /// <inheritdoc />
    public (int Pid, Task<int>? Exit) Start(Func<int> start)
    {
        int pid = start();
        if (pid <= 0) return (pid, null);
        var tcs = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        new Thread(() =>
        {
            (int got, int status) = Wait.WaitPid(pid);
            if (got == pid) tcs.SetResult(status);
            else tcs.SetException(new SyscallException("waitpid", -got));
        }, 128 * 1024) { IsBackground = true, Name = "waitpid" }.Start();
        return (pid, tcs.Task);
    }
}

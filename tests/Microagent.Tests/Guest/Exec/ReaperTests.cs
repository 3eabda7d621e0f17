using System.Collections.Concurrent;
using System.Diagnostics;
using Microagent.Guest.Exec;
using Microagent.Interop;

namespace Microagent.Tests.Guest.Exec;

public sealed class ReaperTests
{
    private static ReapAllWaiter Unstarted() => new(() => throw new InvalidOperationException("not started"));

    [Fact]
    public async Task ExitReapedBeforeRegistrationIsStillDelivered()
    {
        ReapAllWaiter waiter = Unstarted();
        Unstarted().Route(1, 0); // compiled before the race, so the reaper thread below blocks on nothing but the gate
        Thread? reaper = null;
        bool routedBeforeRegistration = false;
        (int pid, Task<int>? exit) = waiter.Start(() =>
        {
            // The reaper collects the child while the starter has not registered it yet: it must wait for the
            // registration instead of counting the exit as an orphan's. Continue once the reaper thread, inside its
            // delegate, is either blocked (on the gate: its only wait) or has returned from Route.
            int entered = 0, returned = 0;
            reaper = new Thread(() =>
            {
                Volatile.Write(ref entered, 1);
                waiter.Route(4242, 42 << 8);
                Volatile.Write(ref returned, 1);
            }) { IsBackground = true, Name = "test-reaper" };
            reaper.Start();
            Assert.True(SpinWait.SpinUntil(() => Volatile.Read(ref returned) == 1
                || (Volatile.Read(ref entered) == 1 && reaper.ThreadState.HasFlag(System.Threading.ThreadState.WaitSleepJoin)), TimeSpan.FromSeconds(10)));
            routedBeforeRegistration = Volatile.Read(ref returned) == 1;
            return 4242;
        });
        Assert.Equal(4242, pid);
        Assert.False(routedBeforeRegistration, "Route completed while the child was being started: its exit was taken for an orphan's");
        Assert.True(reaper!.Join(TimeSpan.FromSeconds(5)), "Route stayed blocked after the registration");
        Assert.Equal(42 << 8, await exit!.WaitAsync(TimeSpan.FromSeconds(5)));
        Assert.Equal(0, waiter.OrphansReaped);
    }

    [Fact]
    public void UnknownPidsAreReapedSilently()
    {
        ReapAllWaiter waiter = Unstarted();
        waiter.Route(999, 0);
        waiter.Route(1000, 9);
        Assert.Equal(2, waiter.OrphansReaped);
    }

    [Fact]
    public void FailedStartRegistersNothing()
    {
        ReapAllWaiter waiter = Unstarted();
        (int pid, Task<int>? exit) = waiter.Start(() => -2);
        Assert.Equal(-2, pid);
        Assert.Null(exit);
        waiter.Route(-2, 0);
        Assert.Equal(1, waiter.OrphansReaped);
    }

    [Fact]
    public async Task FakeWaitLoopRoutesOwnChildrenAndParksOnEchild()
    {
        // A fake waitpid(-1): blocks while a child lives (as the real one does), ECHILD when there is none.
        var queue = new BlockingCollection<(int, int)>();
        int live = 0, echild = 0;
        var sawEchild = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var waiter = new ReapAllWaiter(() =>
        {
            if (Volatile.Read(ref live) == 0 && queue.Count == 0)
            {
                Interlocked.Increment(ref echild);
                sawEchild.TrySetResult();
                return (-Errno.ECHILD, 0);
            }
            (int pid, int status) item = queue.Take();
            if (item.pid == 77) Interlocked.Decrement(ref live);
            return item;
        }).StartReaper();
        await sawEchild.Task.WaitAsync(TimeSpan.FromSeconds(5));
        var parked = Stopwatch.StartNew();

        (_, Task<int>? exit) = waiter.Start(() => { Interlocked.Increment(ref live); return 77; });
        int echildBeforeStart = Volatile.Read(ref echild);
        // With no child the loop parks until one is started (or its 1 s safety timeout): it does not spin on ECHILD.
        Assert.True(echildBeforeStart <= 2 + (int)parked.Elapsed.TotalSeconds, $"{echildBeforeStart} ECHILD returns in {parked.Elapsed}");
        queue.Add((12345, 0)); // an orphan, reparented while our child lives
        queue.Add((77, 3 << 8));
        Assert.Equal(3 << 8, await exit!.WaitAsync(TimeSpan.FromSeconds(5)));
        // The single loop routes in order: the orphan was counted before the child's exit was delivered.
        Assert.Equal(1, waiter.OrphansReaped);
    }
}

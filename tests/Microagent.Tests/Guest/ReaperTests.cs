using System.Diagnostics;
using Microagent.Guest.Exec;
using Microagent.Interop;

namespace Microagent.Tests.Guest;

public sealed class ReaperTests
{
    private static ReapAllWaiter Unstarted() => new(() => throw new InvalidOperationException("not started"));

    [Fact]
    public async Task ExitReapedBeforeRegistrationIsStillDelivered()
    {
        ReapAllWaiter waiter = Unstarted();
        Task? route = null;
        (int pid, Task<int>? exit) = waiter.Start(() =>
        {
            // The reaper collects the child "immediately", while the starter has not registered it yet.
            route = Task.Run(() => waiter.Route(4242, 42 << 8));
            Thread.Sleep(50);
            return 4242;
        });
        Assert.Equal(4242, pid);
        await route!.WaitAsync(TimeSpan.FromSeconds(5));
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
        var queue = new System.Collections.Concurrent.BlockingCollection<(int, int)>();
        int echildCount = 0;
        var waiter = new ReapAllWaiter(() =>
        {
            if (queue.TryTake(out (int, int) item, 20)) return item;
            Interlocked.Increment(ref echildCount);
            return (-Errno.ECHILD, 0);
        }).StartReaper();
        (_, Task<int>? exit) = waiter.Start(() => 77);
        queue.Add((12345, 0)); // orphan
        queue.Add((77, 3 << 8));
        Assert.Equal(3 << 8, await exit!.WaitAsync(TimeSpan.FromSeconds(5)));
        var sw = Stopwatch.StartNew();
        while (waiter.OrphansReaped < 1 && sw.ElapsedMilliseconds < 5000) await Task.Delay(10);
        Assert.Equal(1, waiter.OrphansReaped);
        Assert.True(echildCount >= 0);
    }
}

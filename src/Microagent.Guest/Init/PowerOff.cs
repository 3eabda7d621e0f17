using Microagent.Interop;

namespace Microagent.Guest.Init;

/// <summary>Orderly power-off of the VM from PID 1.</summary>
internal static class PowerOff
{
    private const int WNOHANG = 1;
    private static int _started;

    /// <summary>
    /// Syncs, asks every process to stop (SIGTERM), kills the rest after a short grace (SIGKILL),
    /// remounts the root read-only and powers off. Returns only if the power-off itself failed.
    /// </summary>
    public static void Graceful()
    {
        if (Interlocked.Exchange(ref _started, 1) != 0) return;
        Log.Info("shutting down");
        Mount.Sync();
        Signals.Kill(-1, Signals.SIGTERM);
        WaitForNoChildren(TimeSpan.FromSeconds(2));
        Signals.Kill(-1, Signals.SIGKILL);
        WaitForNoChildren(TimeSpan.FromSeconds(1));
        Now();
    }

    /// <summary>Syncs, remounts / read-only (best effort) and powers off immediately.</summary>
    public static void Now()
    {
        Mount.Sync();
        DataDisks.ReleaseAll();
        try { Mount.Do(null, "/", null, Mount.MS_REMOUNT | Mount.MS_RDONLY); }
        catch (SyscallException e) { Log.Error($"remount / read-only: {e.Message}"); }
        Mount.Sync();
        Log.Info("power off");
        int errno = Reboot.PowerOff();
        Log.Error($"reboot(RB_POWER_OFF) failed: {Libc.Describe(errno)}");
    }

    // Every user process descends from PID 1, so "no children left" means "nothing left running".
    private static void WaitForNoChildren(TimeSpan limit)
    {
        DateTime end = DateTime.UtcNow + limit;
        while (DateTime.UtcNow < end)
        {
            (int pid, _) = Wait.WaitPid(-1, WNOHANG);
            if (pid == -Errno.ECHILD) return;
            if (pid == 0) Thread.Sleep(20);
        }
    }
}

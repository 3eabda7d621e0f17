using System.Diagnostics;
using Microagent.Interop;

namespace Microagent.Guest.Init;

/// <summary>
/// PID 1 boot inside the initramfs: mount /dev, /proc, /sys; load the modules listed in
/// <see cref="ModulesList"/>; mount the root disk named on the kernel command line; switch root into it;
/// complete the standard mounts; set the hostname. Each step throws with its reason on failure.
/// </summary>
internal static class InitSequence
{
    /// <summary>Module paths inside the initramfs, one per line, in load order (written by the host's initramfs builder).</summary>
    public const string ModulesList = "/etc/microagent/modules";

    private const string NewRoot = "/newroot";
    private static readonly List<Microsoft.Win32.SafeHandles.SafeFileHandle> KeptOpen = [];
    private const ulong NoSuidNoDev = Mount.MS_NOSUID | Mount.MS_NODEV;

    /// <summary>Runs the whole sequence; returns the parsed command line.</summary>
    public static KernelCmdline Run()
    {
        MountIfAbsent("devtmpfs", "/dev", "devtmpfs", Mount.MS_NOSUID, "mode=0755");
        Log.UseConsole("/dev/console");
        EnsureStandardDescriptors();
        MountIfAbsent("proc", "/proc", "proc", NoSuidNoDev | Mount.MS_NOEXEC);
        MountIfAbsent("sysfs", "/sys", "sysfs", NoSuidNoDev | Mount.MS_NOEXEC);

        var clock = Stopwatch.StartNew();
        LoadModules();
        Log.Info($"modules loaded in {clock.ElapsedMilliseconds} ms");

        KernelCmdline cmdline = KernelCmdline.Parse(File.ReadAllText("/proc/cmdline"));
        clock.Restart();
        WaitForDevice(cmdline.Root, TimeSpan.FromSeconds(10));
        Directory.CreateDirectory(NewRoot);
        Mount.Do(cmdline.Root, NewRoot, cmdline.RootFsType, 0, cmdline.RootFlags);
        Log.Info($"root {cmdline.Root} ({cmdline.RootFsType}) mounted in {clock.ElapsedMilliseconds} ms");

        Network.NetworkModules.OpenBeforeSwitchRoot();
        SwitchRoot();
        CompleteMounts();
        try { Hostname.Set(cmdline.Hostname); }
        catch (SyscallException e) { Log.Error($"hostname: {e.Message}"); }
        return cmdline;
    }

    /// <summary>Loads every module in <see cref="ModulesList"/>; an already loaded module (EEXIST) is fine.</summary>
    private static void LoadModules()
    {
        if (!File.Exists(ModulesList)) { Log.Info($"{ModulesList} absent: no modules to load"); return; }
        foreach (string raw in File.ReadAllLines(ModulesList))
        {
            string path = raw.Trim();
            if (path.Length == 0 || path[0] == '#') continue;
            try
            {
                using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read);
                int errno = Modules.FinitModule(handle);
                if (errno != 0 && errno != Errno.EEXIST)
                    Log.Error($"finit_module {path}: {Libc.Describe(errno)} (errno {errno})");
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                Log.Error($"module {path}: {e.Message}");
            }
        }
    }

    private static void WaitForDevice(string device, TimeSpan limit)
    {
        var clock = Stopwatch.StartNew();
        while (!File.Exists(device))
        {
            if (clock.Elapsed > limit) throw new InvalidOperationException($"root device {device} did not appear within {limit.TotalSeconds:0} s");
            Thread.Sleep(5);
        }
    }

    /// <summary>Moves /dev, /proc, /sys under the new root and makes it / (what switch_root does, minus deleting the initramfs).</summary>
    private static void SwitchRoot()
    {
        foreach (string m in new[] { "/dev", "/proc", "/sys" })
        {
            string target = NewRoot + m;
            Directory.CreateDirectory(target);
            Mount.Do(m, target, null, Mount.MS_MOVE);
        }
        Mount.Chdir(NewRoot);
        Mount.Do(".", "/", null, Mount.MS_MOVE);
        Mount.Chroot(".");
        Mount.Chdir("/");
    }

    private static void CompleteMounts()
    {
        MountIfAbsent("proc", "/proc", "proc", NoSuidNoDev | Mount.MS_NOEXEC);
        MountIfAbsent("sysfs", "/sys", "sysfs", NoSuidNoDev | Mount.MS_NOEXEC);
        MountIfAbsent("devtmpfs", "/dev", "devtmpfs", Mount.MS_NOSUID, "mode=0755");
        MountIfAbsent("devpts", "/dev/pts", "devpts", Mount.MS_NOSUID | Mount.MS_NOEXEC, "gid=5,mode=0620,ptmxmode=0666");
        MountIfAbsent("tmpfs", "/dev/shm", "tmpfs", NoSuidNoDev, "mode=1777");
        MountIfAbsent("tmpfs", "/tmp", "tmpfs", NoSuidNoDev, "mode=1777");
        MountIfAbsent("tmpfs", "/run", "tmpfs", NoSuidNoDev, "mode=0755");
        foreach ((string link, string target) in new[]
        {
            ("/dev/fd", "/proc/self/fd"), ("/dev/stdin", "/proc/self/fd/0"),
            ("/dev/stdout", "/proc/self/fd/1"), ("/dev/stderr", "/proc/self/fd/2"),
        })
        {
            try { if (!Path.Exists(link)) File.CreateSymbolicLink(link, target); }
            catch (IOException e) { Log.Error($"symlink {link}: {e.Message}"); }
        }
    }

    /// <summary>Mounts unless something is already mounted at <paramref name="target"/>; creates the mount point.</summary>
    private static void MountIfAbsent(string source, string target, string fstype, ulong flags, string? data = null)
    {
        if (IsMountPoint(target)) return;
        try { Directory.CreateDirectory(target); }
        catch (IOException e) { throw new InvalidOperationException($"cannot create mount point {target}: {e.Message}", e); }
        try { Mount.Do(source, target, fstype, flags, data); }
        catch (SyscallException e) when (e.Errno == Errno.EBUSY) { }
    }

    private static bool IsMountPoint(string path)
    {
        try
        {
            foreach (string line in File.ReadLines("/proc/self/mounts"))
            {
                string[] f = line.Split(' ');
                if (f.Length > 1 && f[1] == path) return true;
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        return false;
    }

    /// <summary>
    /// Makes sure descriptors 0, 1, 2 are open (the kernel leaves them closed when the initramfs has no
    /// /dev/console), so pipes never land on them and confuse the dup2 file actions of spawn.
    /// </summary>
    private static void EnsureStandardDescriptors()
    {
        while (true)
        {
            Microsoft.Win32.SafeHandles.SafeFileHandle handle;
            try { handle = File.OpenHandle("/dev/console", FileMode.Open, FileAccess.ReadWrite); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                try { handle = File.OpenHandle("/dev/null", FileMode.Open, FileAccess.ReadWrite); }
                catch (Exception e2) when (e2 is IOException or UnauthorizedAccessException) { Log.Error($"no /dev/console or /dev/null: {e.Message}"); return; }
            }
            if ((int)handle.DangerousGetHandle() > 2) { handle.Dispose(); return; }
            KeptOpen.Add(handle); // stays open for the process lifetime
        }
    }
}

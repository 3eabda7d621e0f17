using System.Diagnostics;
using Microagent.Interop;
using Microagent.Protocol;

namespace Microagent.Guest.Init;

/// <summary>
/// Data disks (docs/ARCHITECTURE.md "Images and disks"): the host's <c>mount</c> request names a virtio-blk serial, never a
/// /dev/vdX name (probe order is not an interface); the device is found through <c>/sys/block/*/serial</c> and mounted at
/// the target. Every mount is remembered so power-off unmounts it: an ext4 left "needs recovery" could not be attached
/// read-only afterwards.
/// </summary>
internal static class DataDisks
{
    private static readonly TimeSpan DeviceWait = TimeSpan.FromSeconds(10);
    private static readonly object Gate = new();
    private static readonly List<string> Mounted = [];

    /// <summary>Mounts the disk; null on success (also when it is already mounted there), else why not.</summary>
    public static string? Mount(MountRequest? request)
    {
        if (request is null || request.Serial.Length is 0 or > MountInfo.MaxSerialBytes || request.Serial.Any(c => !char.IsAsciiLetterOrDigit(c) && c != '-'))
            return "mount needs a serial of 1-20 letters, digits or '-'";
        if (request.FsType != "ext4") return $"filesystem '{request.FsType}' is not supported (ext4 only)";
        string target = request.Target;
        if (!target.StartsWith('/') || target == "/" || target.Contains('\0') || target.Split('/').Any(p => p is "." or ".."))
            return $"mount target '{target}' must be an absolute path other than / without . or ..";
        string? device = FindDevice(request.Serial);
        if (device is null) return $"no block device with serial '{request.Serial}' appeared within {DeviceWait.TotalSeconds:0} s";
        lock (Gate)
        {
            if (MountedAt(target) == device) return null;
            try { Directory.CreateDirectory(target); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return $"cannot create {target}: {e.Message}"; }
            ulong flags = Microagent.Interop.Mount.MS_NODEV | (request.ReadOnly ? Microagent.Interop.Mount.MS_RDONLY : 0);
            try { Microagent.Interop.Mount.Do(device, target, "ext4", flags); }
            catch (SyscallException first) when (request.ReadOnly)
            {
                // A read-only device whose journal needs recovery cannot replay it: mount without loading the journal.
                try { Microagent.Interop.Mount.Do(device, target, "ext4", flags, "noload"); }
                catch (SyscallException) { return $"mount {device} on {target}: {first.Message}"; }
            }
            catch (SyscallException e) { return $"mount {device} on {target}: {e.Message}"; }
            Mounted.Add(target);
        }
        Log.Info($"disk {request.Serial} ({device}) mounted on {target}{(request.ReadOnly ? " read-only" : "")}");
        return null;
    }

    /// <summary>Unmounts every data disk (last mounted first); a busy one is remounted read-only instead. Called at power-off.</summary>
    public static void ReleaseAll()
    {
        lock (Gate)
        {
            for (int i = Mounted.Count - 1; i >= 0; i--)
            {
                string target = Mounted[i];
                if (Microagent.Interop.Mount.Unmount(target) == 0) continue;
                try { Microagent.Interop.Mount.Do(null, target, null, Microagent.Interop.Mount.MS_REMOUNT | Microagent.Interop.Mount.MS_RDONLY); }
                catch (SyscallException e) { Log.Error($"unmount {target}: {e.Message}"); }
            }
            Mounted.Clear();
        }
    }

    /// <summary>/dev/NAME of the block device whose serial is <paramref name="serial"/>, waiting for it to be probed.</summary>
    private static string? FindDevice(string serial)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                foreach (string dir in Directory.EnumerateDirectories("/sys/block"))
                {
                    string file = Path.Combine(dir, "serial");
                    if (File.Exists(file) && File.ReadAllText(file).Trim() == serial)
                    {
                        string dev = "/dev/" + Path.GetFileName(dir);
                        if (File.Exists(dev)) return dev;
                    }
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
            if (clock.Elapsed > DeviceWait) return null;
            Thread.Sleep(20);
        }
    }

    private static string? MountedAt(string target)
    {
        try
        {
            foreach (string line in File.ReadLines("/proc/self/mounts"))
            {
                string[] f = line.Split(' ');
                if (f.Length > 1 && f[1] == target) return f[0];
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        return null;
    }
}

using Microagent.Interop;
using Microsoft.Win32.SafeHandles;

namespace Microagent.Guest.Network;

/// <summary>
/// The kernel modules of the <c>user</c> network (nf_tables, nft_redir, nft_chain_nat, their conntrack and NAT dependencies,
/// dummy), listed by the host's initramfs builder in <see cref="ListPath"/> in load order. They are loaded only when a
/// <c>user</c> network is asked for, after the switch into the root disk hides the initramfs, so each file is opened before
/// the switch and kept open (the initramfs stays in memory underneath; finit_module reads the open file).
/// </summary>
internal static class NetworkModules
{
    /// <summary>Module paths inside the initramfs, one per line, in load order.</summary>
    public const string ListPath = "/etc/microagent/modules-net";

    private static readonly List<(string Path, SafeFileHandle Handle)> Opened = [];
    private static readonly Lock Gate = new();
    private static bool _loaded;

    /// <summary>Opens every listed module (call before the switch root); a missing list means no network modules.</summary>
    public static void OpenBeforeSwitchRoot()
    {
        if (!File.Exists(ListPath)) return;
        foreach (string raw in File.ReadAllLines(ListPath))
        {
            string path = raw.Trim();
            if (path.Length == 0 || path[0] == '#') continue;
            try { Opened.Add((path, File.OpenHandle(path, FileMode.Open, FileAccess.Read))); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { Log.Error($"network module {path}: {e.Message}"); }
        }
    }

    /// <summary>Loads the opened modules once; an already loaded one (EEXIST) is fine. Throws with the first failure.</summary>
    public static void LoadAll()
    {
        lock (Gate)
        {
            if (_loaded) return;
            foreach ((string path, SafeFileHandle handle) in Opened)
            {
                int errno = Modules.FinitModule(handle);
                if (errno != 0 && errno != Errno.EEXIST)
                    throw new IOException($"finit_module {path}: {Libc.Describe(errno)} (errno {errno})");
            }
            _loaded = true;
        }
    }
}

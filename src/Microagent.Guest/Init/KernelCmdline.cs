namespace Microagent.Guest.Init;

/// <summary>
/// The agent's keys on the kernel command line (/proc/cmdline):
/// <c>microagent.root=</c> (default /dev/vda), <c>microagent.rootfstype=</c> (ext4),
/// <c>microagent.rootflags=</c> (none), <c>microagent.hostname=</c> (workspace),
/// <c>microagent.selftest=1</c> (run one local exec after switch root, print it, power off),
/// <c>microagent.netmodules=preload</c> (load the <c>user</c> network's kernel modules before the hello: a template capture's
/// boot, so a warm start finds them loaded; docs/ARCHITECTURE.md "Warm start").
/// </summary>
internal sealed record KernelCmdline(string Root, string RootFsType, string? RootFlags, string Hostname, bool SelfTest, bool PreloadNetworkModules = false)
{
    /// <summary>Parses a command line; unknown words are ignored.</summary>
    public static KernelCmdline Parse(string cmdline)
    {
        var keys = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (string word in cmdline.Split([' ', '\t', '\n'], StringSplitOptions.RemoveEmptyEntries))
        {
            int eq = word.IndexOf('=');
            if (eq > 0) keys[word[..eq]] = word[(eq + 1)..];
            else keys[word] = "";
        }
        string Get(string key, string fallback) => keys.TryGetValue(key, out string? v) && v.Length > 0 ? v : fallback;
        return new KernelCmdline(
            Get("microagent.root", "/dev/vda"),
            Get("microagent.rootfstype", "ext4"),
            keys.TryGetValue("microagent.rootflags", out string? flags) && flags.Length > 0 ? flags : null,
            Get("microagent.hostname", "workspace"),
            keys.TryGetValue("microagent.selftest", out string? st) && st is "1" or "",
            keys.TryGetValue("microagent.netmodules", out string? nm) && nm == "preload");
    }
}

using Microagent.Errors;

namespace Microagent.Kernels;

/// <summary>
/// The module dependency graph of one kernel, from <c>modules.dep</c> (kmod's depmod(8) text
/// format: one line per module, <c>path: dep-path dep-path ...</c>, paths relative to
/// <c>/lib/modules/&lt;version&gt;/</c>) and <c>modules.builtin</c> (one path per line of a module
/// compiled into the kernel image). Module names compare with <c>-</c> and <c>_</c> equal.
/// </summary>
internal sealed class ModulesDep
{
    /// <summary>Modules the guest needs, in no particular order: PCI and MMIO transports, the root disk, vsock.</summary>
    public static readonly IReadOnlyList<string> Required = ["virtio_pci", "virtio_mmio", "virtio_blk", "vmw_vsock_virtio_transport"];

    /// <summary>
    /// Modules loaded when the kernel has them: <c>pvpanic_mmio</c> drives QEMU's pvpanic device, so a guest panic reaches the host
    /// as an event (docs/ARCHITECTURE.md "Faults"); without it the serial log is the only witness.
    /// </summary>
    public static readonly IReadOnlyList<string> Optional = ["pvpanic_mmio"];

    /// <summary>
    /// Modules of the <c>user</c> network (docs/ARCHITECTURE.md "Networking"), listed apart and loaded by the agent only when a
    /// <c>user</c> network is asked for: nf_tables with its nat chain type and redirect expression (conntrack and NAT come as
    /// dependencies), and dummy, the interface that drops what nothing carries.
    /// </summary>
    public static readonly IReadOnlyList<string> Network = ["nf_tables", "nft_chain_nat", "nft_redir", "dummy"];

    private static readonly string[] Suffixes = [".ko.zst", ".ko.xz", ".ko.gz", ".ko"];

    private readonly Dictionary<string, (string Path, string[] Deps)> _modules;
    private readonly HashSet<string> _builtin;

    private ModulesDep(Dictionary<string, (string, string[])> modules, HashSet<string> builtin)
    {
        _modules = modules;
        _builtin = builtin;
    }

    /// <summary>Number of loadable modules listed.</summary>
    public int Count => _modules.Count;

    /// <summary>Parses the text of <c>modules.dep</c> and (optionally) <c>modules.builtin</c>.</summary>
    public static ModulesDep Parse(string modulesDep, string? modulesBuiltin = null)
    {
        var modules = new Dictionary<string, (string, string[])>(StringComparer.Ordinal);
        int lineNo = 0;
        foreach (string raw in modulesDep.Split('\n'))
        {
            lineNo++;
            string line = raw.Trim();
            if (line.Length == 0 || line.StartsWith('#')) continue;
            int colon = line.IndexOf(':');
            if (colon <= 0)
                throw MicroagentException.Invalid($"modules.dep line {lineNo} is malformed: `{Truncate(line)}`",
                    "regenerate it with `depmod` or reinstall the kernel with `microagent kernel install`");
            string path = line[..colon].Trim();
            string[] deps = line[(colon + 1)..].Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
            CheckRelative(path, lineNo);
            foreach (string d in deps) CheckRelative(d, lineNo);
            modules[NormalizeName(path)] = (path, deps);
        }
        var builtin = new HashSet<string>(StringComparer.Ordinal);
        if (modulesBuiltin is not null)
            foreach (string raw in modulesBuiltin.Split('\n'))
                if (raw.Trim() is { Length: > 0 } b) builtin.Add(NormalizeName(b));
        return new ModulesDep(modules, builtin);
    }

    /// <summary>Loads <c>modules.dep</c> and <c>modules.builtin</c> from a kernel's modules directory.</summary>
    public static ModulesDep Load(string modulesDir)
    {
        string dep = Path.Combine(modulesDir, "modules.dep");
        if (!File.Exists(dep))
            throw MicroagentException.NotFound($"{dep} is missing",
                "reinstall the kernel with `microagent kernel install` (it runs depmod)");
        string builtin = Path.Combine(modulesDir, "modules.builtin");
        return Parse(File.ReadAllText(dep), File.Exists(builtin) ? File.ReadAllText(builtin) : null);
    }

    /// <summary>Module name of a path or name: file name without <c>.ko[.xz|.zst|.gz]</c>, <c>-</c> as <c>_</c>.</summary>
    public static string NormalizeName(string pathOrName)
    {
        string name = pathOrName.Trim();
        int slash = name.LastIndexOf('/');
        if (slash >= 0) name = name[(slash + 1)..];
        foreach (string s in Suffixes)
            if (name.EndsWith(s, StringComparison.Ordinal)) { name = name[..^s.Length]; break; }
        return name.Replace('-', '_');
    }

    /// <summary>Whether the module can be loaded or is compiled in.</summary>
    public bool Provides(string name) => _modules.ContainsKey(NormalizeName(name)) || IsBuiltin(name);

    /// <summary>Whether the module is compiled into the kernel image.</summary>
    public bool IsBuiltin(string name) => _builtin.Contains(NormalizeName(name));

    /// <summary>
    /// The module files (paths relative to the modules directory) needed to load
    /// <paramref name="names"/>, dependencies before dependents, each once. Built-in modules are
    /// skipped. A name that is neither loadable nor built in is an <see cref="ErrorKind.Unsupported"/> error.
    /// </summary>
    public IReadOnlyList<string> Resolve(IEnumerable<string> names)
    {
        var order = new List<string>();
        var done = new HashSet<string>(StringComparer.Ordinal);
        var inProgress = new HashSet<string>(StringComparer.Ordinal);

        void Visit(string name, string? neededBy)
        {
            name = NormalizeName(name);
            if (done.Contains(name) || _builtin.Contains(name)) return;
            if (!_modules.TryGetValue(name, out var entry))
                throw MicroagentException.Unsupported(
                    $"kernel module `{name}`{(neededBy is null ? "" : $" (needed by `{neededBy}`)")} is neither in modules.dep nor built in",
                    "use a kernel that provides virtio and vsock drivers, e.g. Debian's linux-image-cloud-amd64, installed with `microagent kernel install`");
            if (!inProgress.Add(name)) return; // dependency cycle: depmod rejects these; never loop
            // modules.dep lists the full transitive closure already, in load order last-first; visiting each keeps it honest.
            for (int i = entry.Deps.Length - 1; i >= 0; i--) Visit(entry.Deps[i], name);
            inProgress.Remove(name);
            done.Add(name);
            order.Add(entry.Path);
        }

        foreach (string n in names) Visit(n, null);
        return order;
    }

    private static void CheckRelative(string path, int lineNo)
    {
        if (path.StartsWith('/') || path.Split('/').Contains(".."))
            throw MicroagentException.Invalid($"modules.dep line {lineNo} names a path outside the modules directory: `{Truncate(path)}`",
                "regenerate it with `depmod` or reinstall the kernel with `microagent kernel install`");
    }

    private static string Truncate(string s) => s.Length > 120 ? s[..120] + "..." : s;
}

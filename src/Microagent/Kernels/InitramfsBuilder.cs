using System.Text;
using Microagent.Errors;
using Microagent.Tools;

namespace Microagent.Kernels;

/// <summary>
/// Builds the initramfs that boots a workspace: <c>/init</c> (the NativeAOT guest agent), the
/// dynamic loader and the libraries it needs, the kernel modules the guest must load (resolved from
/// <c>modules.dep</c>, decompressed to plain <c>.ko</c> because the agent uses finit_module), and
/// <c>/etc/microagent/modules</c>: one in-initramfs module path per line, in load order.
/// Results are cached as <c>initramfs/&lt;key&gt;.cpio</c>, key = sha256 over every input.
/// </summary>
internal sealed class InitramfsBuilder
{
    /// <summary>Bump when the archive layout changes, so cached archives are rebuilt.</summary>
    public const int BuilderVersion = 2;

    /// <summary>Where the guest agent finds its module list.</summary>
    public const string ModuleListPath = "/etc/microagent/modules";

    /// <summary>Where the guest agent finds the modules it loads for a <c>user</c> network (<see cref="ModulesDep.Network"/>).</summary>
    public const string NetworkModuleListPath = "/etc/microagent/modules-net";

    /// <summary>PT_INTERP of x86_64 glibc binaries.</summary>
    public const string LoaderPath = "/lib64/ld-linux-x86-64.so.2";

    /// <summary>Where glibc's libc lives on Debian x86_64.</summary>
    public const string LibcPath = "/lib/x86_64-linux-gnu/libc.so.6";

    private static readonly string[] EmptyDirs = ["dev", "proc", "sys", "newroot", "tmp", "run", "etc"];

    private readonly StatePaths _paths;

    /// <summary>Caches under the initramfs directory of <paramref name="paths"/>.</summary>
    public InitramfsBuilder(StatePaths paths) => _paths = paths;

    /// <summary>Modules put into the initramfs (names; dependencies are added).</summary>
    public IReadOnlyList<string> Modules { get; init; } = ModulesDep.Required;

    /// <summary>Modules added when the kernel provides them (<see cref="ModulesDep.Optional"/>).</summary>
    public IReadOnlyList<string> OptionalModules { get; init; } = ModulesDep.Optional;

    /// <summary>Network modules put into the initramfs apart from <see cref="Modules"/> (when the kernel provides them all).</summary>
    public IReadOnlyList<string> NetworkModules { get; init; } = ModulesDep.Network;

    /// <summary>Returns the path of the initramfs for this kernel and agent, building it if needed.</summary>
    public async Task<string> EnsureAsync(InstalledKernel kernel, string agentPath, CancellationToken ct = default)
    {
        if (!File.Exists(agentPath))
            throw MicroagentException.NotFound($"guest agent binary {agentPath} does not exist", "build it with `make build`");

        // Fast path: a stamp records every input's (path, size, mtime) for a built archive. When nothing changed,
        // the archive is reused without running ldd or hashing several MB on every boot.
        StatePaths.EnsureDirectory(_paths.Initramfs);
        string stampPath = Path.Combine(_paths.Initramfs, $"{Hashing.Sha256(Encoding.UTF8.GetBytes($"{BuilderVersion}|{kernel.Sha256}|{Path.GetFullPath(agentPath)}|{string.Join(',', Modules)}|{string.Join(',', OptionalModules)}|{string.Join(',', NetworkModules)}"))}.stamp");
        if (ReadStamp(stampPath) is { } cached) return cached;

        // No modules.dep at all: a kernel installed without modules (all drivers built in); the list stays empty.
        IReadOnlyList<string> modules = [];
        IReadOnlyList<string> networkModules = [];
        if (File.Exists(Path.Combine(kernel.ModulesDir, "modules.dep")))
        {
            var dep = ModulesDep.Load(kernel.ModulesDir);
            modules = dep.Resolve([.. Modules, .. OptionalModules.Where(dep.Provides)]);
            // Without one of them the user network cannot be set up: none is listed, and the agent's network request says why.
            if (NetworkModules.All(dep.Provides))
                networkModules = dep.Resolve(NetworkModules).Where(m => !modules.Contains(m)).ToList();
        }
        IReadOnlyList<string> libs = await FindLibrariesAsync(agentPath, ct).ConfigureAwait(false);

        var key = new StringBuilder();
        key.Append($"builder {BuilderVersion}\nkernel {kernel.Version} {kernel.Sha256}\n");
        key.Append($"agent {await Hashing.Sha256FileAsync(agentPath, ct).ConfigureAwait(false)}\n");
        foreach (string lib in libs) key.Append($"lib {lib} {await Hashing.Sha256FileAsync(lib, ct).ConfigureAwait(false)}\n");
        foreach (string m in networkModules) key.Append($"netmodule {m} {await Hashing.Sha256FileAsync(Path.Combine(kernel.ModulesDir, m), ct).ConfigureAwait(false)}\n");
        foreach (string m in modules) key.Append($"module {m} {await Hashing.Sha256FileAsync(Path.Combine(kernel.ModulesDir, m), ct).ConfigureAwait(false)}\n");
        string hash = Hashing.Sha256(Encoding.UTF8.GetBytes(key.ToString()));

        string final = Path.Combine(_paths.Initramfs, $"{hash}.cpio");
        string[] inputs = [agentPath, .. libs, .. modules.Concat(networkModules).Select(m => Path.Combine(kernel.ModulesDir, m))];
        if (File.Exists(final))
        {
            WriteStamp(stampPath, final, inputs);
            return final;
        }

        string tmp = Path.Combine(_paths.Initramfs, $".{hash}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        try
        {
            await using (var fs = new FileStream(tmp, new FileStreamOptions
            {
                Mode = FileMode.CreateNew, Access = FileAccess.Write,
                UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
            }))
            {
                using var cpio = new CpioWriter(fs, leaveOpen: true);
                foreach (string d in EmptyDirs) cpio.AddDirectory(d);
                cpio.AddFile("init", await File.ReadAllBytesAsync(agentPath, ct).ConfigureAwait(false), 0b111_101_101);
                foreach (string lib in libs)
                    cpio.AddFile(lib, await File.ReadAllBytesAsync(lib, ct).ConfigureAwait(false), 0b111_101_101);

                foreach ((IReadOnlyList<string> set, string listPath) in new[] { (modules, ModuleListPath), (networkModules, NetworkModuleListPath) })
                {
                    var list = new StringBuilder();
                    foreach (string m in set)
                    {
                        string plain = StripCompression(m);
                        string inArchive = $"/lib/modules/{kernel.Version}/{plain}";
                        cpio.AddFile(inArchive, await ReadModuleAsync(Path.Combine(kernel.ModulesDir, m), ct).ConfigureAwait(false), 0b110_100_100);
                        list.Append(inArchive).Append('\n');
                    }
                    cpio.AddFile(listPath, Encoding.UTF8.GetBytes(list.ToString()), 0b110_100_100);
                }
                cpio.Finish();
                fs.Flush(flushToDisk: true);
            }
            File.Move(tmp, final, overwrite: true);
            WriteStamp(stampPath, final, inputs);
            return final;
        }
        finally
        {
            if (File.Exists(tmp)) File.Delete(tmp);
        }
    }

    /// <summary>
    /// Host paths of the loader, libc, and any other DT_NEEDED library <c>ldd</c> reports for the
    /// agent (the archive stores each at the same absolute path). A statically linked agent needs none.
    /// </summary>
    internal static async Task<IReadOnlyList<string>> FindLibrariesAsync(string agentPath, CancellationToken ct)
    {
        var libs = new List<string>();
        ToolResult? ldd = ExternalTool.Find("ldd") is null ? null
            : await ExternalTool.RunAsync("ldd", "libc-bin", [Path.GetFullPath(agentPath)], ct, check: false).ConfigureAwait(false);
        if (ldd is not null && ldd.ExitCode != 0 && (ldd.Stdout + ldd.Stderr).Contains("not a dynamic executable", StringComparison.Ordinal))
            return libs;

        foreach (string required in (string[])[LoaderPath, LibcPath])
        {
            if (!File.Exists(required))
                throw MicroagentException.Unsupported($"{required} is missing on this host; the guest agent needs it in the initramfs",
                    "run microagent on an x86_64 glibc host (Debian/Ubuntu) or install libc6");
            libs.Add(required);
        }
        if (ldd is { ExitCode: 0 })
        {
            foreach (string line in ldd.Stdout.Split('\n'))
            {
                // "libm.so.6 => /lib/x86_64-linux-gnu/libm.so.6 (0x...)" or "/lib64/ld-linux-x86-64.so.2 (0x...)"
                string t = line.Trim();
                int arrow = t.IndexOf("=>", StringComparison.Ordinal);
                string rest = arrow >= 0 ? t[(arrow + 2)..].Trim() : t;
                int paren = rest.IndexOf(" (", StringComparison.Ordinal);
                string path = paren >= 0 ? rest[..paren] : rest;
                if (!path.StartsWith('/') || !File.Exists(path)) continue;
                if (string.Equals(Path.GetFileName(path), "libc.so.6", StringComparison.Ordinal) ||
                    string.Equals(Path.GetFileName(path), "ld-linux-x86-64.so.2", StringComparison.Ordinal)) continue;
                if (!libs.Contains(path)) libs.Add(path);
            }
        }
        return libs;
    }

    private static string StripCompression(string modulePath)
    {
        foreach (string ext in (string[])[".xz", ".zst", ".gz"])
            if (modulePath.EndsWith(".ko" + ext, StringComparison.Ordinal)) return modulePath[..^ext.Length];
        return modulePath;
    }

    private static async Task<byte[]> ReadModuleAsync(string path, CancellationToken ct)
    {
        if (!File.Exists(path))
            throw MicroagentException.NotFound($"kernel module {path} is listed in modules.dep but missing",
                "reinstall the kernel with `microagent kernel install`");
        var ms = new MemoryStream();
        if (path.EndsWith(".ko.xz", StringComparison.Ordinal))
            await ExternalTool.RunAsync("xz", "xz-utils", ["-dc", path], ct, stdoutTo: ms).ConfigureAwait(false);
        else if (path.EndsWith(".ko.zst", StringComparison.Ordinal))
            await ExternalTool.RunAsync("zstd", "zstd", ["-dcq", path], ct, stdoutTo: ms).ConfigureAwait(false);
        else if (path.EndsWith(".ko.gz", StringComparison.Ordinal))
        {
            await using var gz = new System.IO.Compression.GZipStream(File.OpenRead(path), System.IO.Compression.CompressionMode.Decompress);
            await gz.CopyToAsync(ms, ct).ConfigureAwait(false);
        }
        else
            return await File.ReadAllBytesAsync(path, ct).ConfigureAwait(false);
        return ms.ToArray();
    }

    /// <summary>
    /// (path, size, mtime) of an input; the agent — the input that changes with every build, and can be replaced by a
    /// copy with the same size and mtime — also gets its content hash (a few ms for a few MB).
    /// </summary>
    private static string Fingerprint(string path, bool withHash)
    {
        var info = new FileInfo(path);
        if (!info.Exists) return $"{path}|missing";
        string fp = $"{info.FullName}|{info.Length}|{info.LastWriteTimeUtc.Ticks}";
        return withHash ? $"{fp}|{Hashing.Sha256(File.ReadAllBytes(path))}" : fp;
    }

    private static void WriteStamp(string stampPath, string archive, IReadOnlyList<string> inputs) =>
        StatePaths.WriteAtomic(stampPath, string.Join('\n', [archive, .. inputs.Select((p, i) => Fingerprint(p, withHash: i == 0))]) + "\n");

    /// <summary>The archive named by the stamp when it exists and every recorded input is unchanged; else null.</summary>
    private static string? ReadStamp(string stampPath)
    {
        try
        {
            if (!File.Exists(stampPath)) return null;
            string[] lines = File.ReadAllLines(stampPath);
            if (lines.Length < 2 || !File.Exists(lines[0])) return null;
            for (int i = 1; i < lines.Length; i++)
            {
                string path = lines[i][..lines[i].IndexOf('|')];
                if (Fingerprint(path, withHash: i == 1) != lines[i]) return null;
            }
            return lines[0];
        }
        catch (IOException) { return null; }
    }
}

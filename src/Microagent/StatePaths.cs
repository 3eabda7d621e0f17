using Microagent.Errors;

namespace Microagent;

/// <summary>
/// Layout of the state directory (docs/ARCHITECTURE.md "Who writes state"): <c>--state-dir</c>, else <c>$MICROAGENT_STATE_DIR</c>,
/// else <c>~/.microagent</c>. Every directory is created 0700; files written under it are 0600.
/// </summary>
public sealed class StatePaths
{
    /// <summary>Environment variable that overrides the default state directory.</summary>
    public const string EnvironmentVariable = "MICROAGENT_STATE_DIR";

    /// <summary>Uses <paramref name="root"/>, or the environment/default location when null.</summary>
    public StatePaths(string? root = null)
    {
        root ??= Environment.GetEnvironmentVariable(EnvironmentVariable);
        if (string.IsNullOrEmpty(root))
            root = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".microagent");
        Root = Path.GetFullPath(root);
    }

    /// <summary>The state directory itself.</summary>
    public string Root { get; }

    /// <summary>Installed kernels: <c>kernels/&lt;version&gt;/</c>.</summary>
    public string Kernels => Path.Combine(Root, "kernels");

    /// <summary>Built initramfs images, keyed by content hash.</summary>
    public string Initramfs => Path.Combine(Root, "initramfs");

    /// <summary>Image cache: sealed ext4 baselines and metadata.</summary>
    public string Images => Path.Combine(Root, "images");

    /// <summary>One directory per workspace.</summary>
    public string Workspaces => Path.Combine(Root, "workspaces");

    /// <summary>Warm-start templates: <c>templates/&lt;key&gt;/</c> and their disk layers (docs/ARCHITECTURE.md "Warm start").</summary>
    public string Templates => Path.Combine(Root, "templates");

    /// <summary>Cached results (accelerator probe and the like).</summary>
    public string Cache => Path.Combine(Root, "cache");

    /// <summary>Temporary files that are renamed into place when complete.</summary>
    public string Tmp => Path.Combine(Root, "tmp");

    /// <summary>Creates <paramref name="path"/> (and parents under the root) with mode 0700.</summary>
    internal static string EnsureDirectory(string path)
    {
        try
        {
            Directory.CreateDirectory(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            return path;
        }
        catch (UnauthorizedAccessException e)
        {
            throw MicroagentException.Permanent($"cannot create state directory {path}: {e.Message}",
                $"choose a writable location with --state-dir or ${EnvironmentVariable}", e);
        }
    }

    /// <summary>Writes <paramref name="contents"/> to <paramref name="path"/> atomically (temp file + rename), mode 0600.</summary>
    internal static void WriteAtomic(string path, ReadOnlySpan<byte> contents)
    {
        string dir = Path.GetDirectoryName(path)!;
        EnsureDirectory(dir);
        string tmp = Path.Combine(dir, $".{Path.GetFileName(path)}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var fs = new FileStream(tmp, new FileStreamOptions
            {
                Mode = FileMode.CreateNew, Access = FileAccess.Write,
                UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
            }))
            {
                fs.Write(contents);
                fs.Flush(flushToDisk: true);
            }
            File.Move(tmp, path, overwrite: true);
        }
        catch
        {
            File.Delete(tmp);
            throw;
        }
    }

    /// <summary>Writes text atomically, mode 0600.</summary>
    internal static void WriteAtomic(string path, string contents) => WriteAtomic(path, System.Text.Encoding.UTF8.GetBytes(contents));
}

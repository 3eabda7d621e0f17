using Microagent.Errors;

namespace Microagent.Tools;

/// <summary>
/// Finds the native executables the library needs beside the program that uses it (docs/ARCHITECTURE.md "Binaries"):
/// the host binary <c>microagent</c> (it runs each workspace's supervisor) and the guest agent <c>microagent-agent</c>.
/// In this repository they are <c>bin/</c>; in the <c>Microagent</c> NuGet package they are native assets under
/// <c>runtimes/linux-x64/native/</c>, which a build copies to <c>runtimes/linux-x64/native/</c> of the program's output and
/// a <c>-r linux-x64</c> publish copies beside the program; the .NET host lists both places in
/// <c>NATIVE_DLL_SEARCH_DIRECTORIES</c>.
/// </summary>
internal static class NativeBinaries
{
    /// <summary>The only runtime the native pieces are built for.</summary>
    public const string RuntimeIdentifier = "linux-x64";

    /// <summary>Where native pieces are looked for, in order: the program's directory, its <c>runtimes/linux-x64/native/</c>, the host's native search directories, the parent directory.</summary>
    public static IEnumerable<string> SearchDirectories()
    {
        string baseDir = AppContext.BaseDirectory;
        yield return baseDir;
        yield return Path.Combine(baseDir, "runtimes", RuntimeIdentifier, "native");
        if (AppContext.GetData("NATIVE_DLL_SEARCH_DIRECTORIES") is string dirs)
            foreach (string dir in dirs.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
                yield return dir;
        yield return Path.Combine(baseDir, "..");
    }

    /// <summary>The first <paramref name="fileName"/> in <see cref="SearchDirectories"/>, made executable; null when there is none.</summary>
    public static string? Find(string fileName)
    {
        foreach (string dir in SearchDirectories())
        {
            string candidate = Path.GetFullPath(Path.Combine(dir, fileName));
            if (File.Exists(candidate)) return EnsureExecutable(candidate);
        }
        return null;
    }

    /// <summary>
    /// Adds the execute bits a package extraction may have dropped (NuGet does not keep file modes): execute for whoever may
    /// read it. Fails with a remediation when the file cannot be changed.
    /// </summary>
    public static string EnsureExecutable(string path)
    {
        var mode = File.GetUnixFileMode(path);
        if ((mode & UnixFileMode.UserExecute) != 0) return path;
        var wanted = mode | UnixFileMode.UserExecute
            | ((mode & UnixFileMode.GroupRead) != 0 ? UnixFileMode.GroupExecute : 0)
            | ((mode & UnixFileMode.OtherRead) != 0 ? UnixFileMode.OtherExecute : 0);
        try { File.SetUnixFileMode(path, wanted); }
        catch (Exception e) when (e is UnauthorizedAccessException or IOException)
        {
            throw MicroagentException.Permanent($"{path} is not executable and cannot be made so: {e.Message}", $"chmod +x {path}", e);
        }
        return path;
    }
}

using System.Diagnostics;
using System.Text;

namespace Microagent.EndToEnd.Tests;

/// <summary>The result of one invocation of the real ./bin/microagent.</summary>
public sealed record CliResult(int ExitCode, byte[] StdoutBytes, string Stderr)
{
    public string Stdout => Encoding.UTF8.GetString(StdoutBytes);
}

/// <summary>
/// Drives the built binary as a user would. All tests share one state directory (kernel, initramfs and
/// baseline are built once); it is removed when the test process exits.
/// </summary>
public static class MicroagentCli
{
    private static readonly Lazy<string> SharedState = new(() =>
    {
        // State dirs of earlier test processes that did not exit cleanly (the test host may be killed) are removed here.
        foreach (string stale in Directory.GetDirectories("/tmp", "ma-e2e-*"))
            if (int.TryParse(Path.GetFileName(stale)["ma-e2e-".Length..].Split('-')[^1], out int pid) && !Directory.Exists($"/proc/{pid}"))
                try { Directory.Delete(stale, true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        string dir = Path.Combine("/tmp", $"ma-e2e-{Environment.ProcessId}");
        Directory.CreateDirectory(dir);
        AppDomain.CurrentDomain.ProcessExit += (_, _) => { try { Directory.Delete(dir, true); } catch (IOException) { } };
        return dir;
    });

    public static string RepoRoot { get; } = FindRepoRoot();

    public static string Binary => Path.Combine(RepoRoot, "bin", "microagent");

    public static string StateDir => SharedState.Value;

    private static string FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Makefile")) && File.Exists(Path.Combine(dir.FullName, "bin", "microagent")))
                return dir.FullName;
        throw new InvalidOperationException("bin/microagent not found above the test directory: run `make build` first");
    }

    public static Process Start(IEnumerable<string> args, string? stateDir = null, bool redirectStdin = false, string? workingDirectory = null)
    {
        var psi = new ProcessStartInfo(Binary)
        {
            WorkingDirectory = workingDirectory ?? "",
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = redirectStdin,
            UseShellExecute = false,
        };
        psi.Environment["MICROAGENT_STATE_DIR"] = stateDir ?? StateDir;
        psi.Environment["NO_COLOR"] = "1";
        // Tests send traffic only to 127.0.0.0/8: the egress broker of every workspace these tests boot dials and resolves nothing else.
        psi.Environment["MICROAGENT_EGRESS_LOOPBACK_ONLY"] = "1";
        foreach (string a in args) psi.ArgumentList.Add(a);
        return Process.Start(psi)!;
    }

    public static async Task<CliResult> RunAsync(IEnumerable<string> args, byte[]? stdin = null, string? stateDir = null, int timeoutSeconds = 180, string? workingDirectory = null)
    {
        using var p = Start(args, stateDir, redirectStdin: stdin is not null, workingDirectory);
        var stdoutTask = ReadAllAsync(p.StandardOutput.BaseStream);
        var stderrTask = p.StandardError.ReadToEndAsync();
        if (stdin is not null)
        {
            await p.StandardInput.BaseStream.WriteAsync(stdin);
            p.StandardInput.Close();
        }
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(timeoutSeconds));
        try { await p.WaitForExitAsync(cts.Token); }
        catch (OperationCanceledException)
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"microagent {string.Join(' ', args)} did not finish in {timeoutSeconds} s; stderr: {await stderrTask}");
        }
        return new CliResult(p.ExitCode, await stdoutTask, await stderrTask);
    }

    private static async Task<byte[]> ReadAllAsync(Stream s)
    {
        using var ms = new MemoryStream();
        await s.CopyToAsync(ms);
        return ms.ToArray();
    }

    /// <summary>QEMU processes whose command line mentions <paramref name="stateDir"/>.</summary>
    public static IReadOnlyList<int> QemuProcessesUnder(string stateDir)
    {
        var pids = new List<int>();
        foreach (string d in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(d), out int pid)) continue;
            try
            {
                string cmdline = File.ReadAllText(Path.Combine(d, "cmdline")).Replace('\0', ' ');
                if (cmdline.Contains("qemu-system", StringComparison.Ordinal) && cmdline.Contains(stateDir, StringComparison.Ordinal))
                    pids.Add(pid);
            }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
        }
        return pids;
    }
}

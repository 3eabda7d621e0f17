using System.Diagnostics;
using Microagent.Errors;

namespace Microagent.Tools;

/// <summary>Result of one external tool run.</summary>
internal sealed record ToolResult(int ExitCode, string Stdout, string Stderr);

/// <summary>
/// Runs host tools (dpkg-deb, depmod, mke2fs, qemu-img, xz, ...) with an argument list (never a
/// shell string). A missing tool or a failing run becomes a typed <see cref="MicroagentException"/>
/// carrying the tool's stderr.
/// </summary>
internal static class ExternalTool
{
    /// <summary>Remediation for a tool that is not installed.</summary>
    public const string InstallRemediation = "install the host dependencies with scripts/install.sh";

    private static readonly string[] ExtraSearchDirs = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"];

    /// <summary>Full path of <paramref name="tool"/> on PATH (plus the sbin directories), or null.</summary>
    public static string? Find(string tool)
    {
        if (tool.Contains('/')) return File.Exists(tool) ? tool : null;
        var dirs = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries).Concat(ExtraSearchDirs);
        foreach (string dir in dirs)
        {
            string candidate = Path.Combine(dir, tool);
            if (File.Exists(candidate)) return candidate;
        }
        return null;
    }

    /// <summary>Path of <paramref name="tool"/>, or an <see cref="ErrorKind.Unsupported"/> error naming the package that provides it.</summary>
    public static string Require(string tool, string package)
        => Find(tool) ?? throw MicroagentException.Unsupported(
            $"required tool `{tool}` (Debian package {package}) is not installed", InstallRemediation);

    /// <summary>
    /// Runs the tool and returns its output. When <paramref name="check"/> is set a non-zero exit
    /// throws a <see cref="ErrorKind.Permanent"/> error with the tool's stderr. When
    /// <paramref name="stdoutTo"/> is given, stdout is copied there as bytes instead of captured.
    /// </summary>
    public static async Task<ToolResult> RunAsync(string tool, string package, IEnumerable<string> args,
        CancellationToken ct = default, bool check = true, Stream? stdoutTo = null, string? remediation = null)
    {
        string exe = Require(tool, package);
        var psi = new ProcessStartInfo(exe)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = false,
            UseShellExecute = false,
        };
        foreach (string a in args) psi.ArgumentList.Add(a);
        psi.Environment["LC_ALL"] = "C";

        using var process = new Process { StartInfo = psi };
        try
        {
            process.Start();
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw MicroagentException.Unsupported($"cannot run `{exe}`: {e.Message}", InstallRemediation);
        }

        Task<string> stderrTask = process.StandardError.ReadToEndAsync(ct);
        string stdout = "";
        try
        {
            if (stdoutTo is null)
                stdout = await process.StandardOutput.ReadToEndAsync(ct).ConfigureAwait(false);
            else
                await process.StandardOutput.BaseStream.CopyToAsync(stdoutTo, ct).ConfigureAwait(false);
            await process.WaitForExitAsync(ct).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            try { process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
            throw;
        }
        string stderr = await stderrTask.ConfigureAwait(false);

        if (check && process.ExitCode != 0)
        {
            string detail = stderr.Trim();
            if (detail.Length > 2000) detail = detail[..2000] + "...";
            throw MicroagentException.Permanent(
                $"`{tool} {string.Join(' ', psi.ArgumentList)}` failed with exit code {process.ExitCode}: {detail}",
                remediation ?? $"check the message above; if `{tool}` is broken or outdated, {InstallRemediation}");
        }
        return new ToolResult(process.ExitCode, stdout, stderr);
    }
}

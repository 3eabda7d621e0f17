using Microagent.Errors;
using Microagent.Tools;

namespace Microagent.Images;

/// <summary>Per-workspace copy-on-write disks: a qcow2 overlay whose backing file is a sealed raw baseline.</summary>
public static class DiskOverlay
{
    /// <summary>
    /// Creates <paramref name="overlayPath"/> (mode 0600) as a qcow2 overlay on
    /// <paramref name="baselinePath"/> (raw). No data is copied; the baseline must never change afterwards.
    /// </summary>
    public static async Task CreateAsync(string baselinePath, string overlayPath, CancellationToken ct = default)
    {
        string backing = Path.GetFullPath(baselinePath);
        if (!File.Exists(backing))
            throw MicroagentException.NotFound($"baseline disk {backing} does not exist", "rebuild it: the image is prepared again on next use");
        string overlay = Path.GetFullPath(overlayPath);
        string dir = Path.GetDirectoryName(overlay)!;
        StatePaths.EnsureDirectory(dir);
        string tmp = Path.Combine(dir, $".{Path.GetFileName(overlay)}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        try
        {
            await ExternalTool.RunAsync("qemu-img", "qemu-utils",
                ["create", "-q", "-f", "qcow2", "-F", "raw", "-b", backing, tmp], ct).ConfigureAwait(false);
            File.SetUnixFileMode(tmp, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            File.Move(tmp, overlay, overwrite: true);
        }
        finally
        {
            if (File.Exists(tmp)) File.Delete(tmp);
        }
    }
}

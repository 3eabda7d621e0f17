using System.Text.RegularExpressions;
using Microagent.Protocol;

namespace Microagent.Guest.Server;

/// <summary>
/// What a guest resumed from a saved VM state is told by the host (docs/ARCHITECTURE.md "Snapshots"): <c>reseed</c> mixes host
/// entropy into the kernel RNG (every clone of one snapshot starts with the same RNG state), <c>identity</c> gives a fork its
/// own hostname and machine-id. Each answers <c>ok</c> or an error; nothing a peer sends throws out of here.
/// </summary>
internal static partial class CloneHygiene
{
    /// <summary>Path of the machine-id (systemd's machine-id(5)).</summary>
    public const string MachineIdPath = "/etc/machine-id";

    [GeneratedRegex("^[0-9a-f]{32}$")]
    private static partial Regex MachineIdPattern();

    [GeneratedRegex("^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")]
    private static partial Regex HostnamePattern();

    /// <summary>The answer to <c>reseed</c> with <paramref name="seed"/>.</summary>
    public static Response Reseed(byte[]? seed)
    {
        if (seed is not { Length: >= 16 and <= 4096 }) return Error("invalid", "reseed needs 16-4096 bytes of data");
        try { Interop.KernelRandom.AddEntropy(seed); }
        catch (IOException e) { return Error("permanent", $"cannot reseed the kernel RNG: {e.Message}"); }
        return new Response { Type = ResponseTypes.Ok };
    }

    /// <summary>The answer to <c>identity</c>: sets the hostname and writes the machine-id.</summary>
    public static Response Identity(string? hostname, string? machineId)
    {
        if (hostname is null || !HostnamePattern().IsMatch(hostname)) return Error("invalid", "identity needs a hostname of 1-63 letters, digits and '-'");
        if (machineId is null || !MachineIdPattern().IsMatch(machineId)) return Error("invalid", "identity needs a machineId of 32 lowercase hex digits");
        try
        {
            Interop.Hostname.Set(hostname);
            string tmp = MachineIdPath + ".tmp";
            File.WriteAllText(tmp, machineId + "\n");
            File.Move(tmp, MachineIdPath, overwrite: true);
            if (File.Exists("/etc/hostname")) File.WriteAllText("/etc/hostname", hostname + "\n");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return Error("permanent", $"cannot apply the identity: {e.Message}");
        }
        return new Response { Type = ResponseTypes.Ok };
    }

    private static Response Error(string kind, string message) =>
        new() { Type = ResponseTypes.Error, Error = new ProtocolError { Kind = kind, Message = message } };
}

using System.CommandLine;
using Microagent.Errors;

namespace Microagent.Cli.Commands;

/// <summary>
/// Flags Docker users reach for that have no meaning for a microVM. They are recognised (hidden from help) so the answer is
/// why, and what to use instead, not "unrecognized argument": a usage error (invalid, exit 2) before anything is done.
/// </summary>
internal sealed class DockerFlags
{
    private readonly Option<bool> _privileged = new("--privileged") { Hidden = true };
    private readonly Option<string[]> _device = new("--device") { Hidden = true, AllowMultipleArgumentsPerToken = false };
    private readonly Option<string?> _pid = new("--pid") { Hidden = true };
    private readonly Option<string[]> _mount = new("--mount") { Hidden = true, AllowMultipleArgumentsPerToken = false };

    /// <summary>Adds the flags to <paramref name="command"/>.</summary>
    public static DockerFlags AddTo(Command command)
    {
        var flags = new DockerFlags();
        foreach (var o in new Option[] { flags._privileged, flags._device, flags._pid, flags._mount }) command.Options.Add(o);
        return flags;
    }

    /// <summary>Throws the refusal of the first such flag given.</summary>
    public void Refuse(ParseResult r)
    {
        if (r.GetValue(_privileged))
            throw Refusal("--privileged has no meaning here: the workload is already root in its own VM, with its own kernel, and cannot reach the host's devices",
                "drop --privileged; the guest user is root unless --user says otherwise");
        if (r.GetValue(_device) is { Length: > 0 } d)
            throw Refusal($"--device {d[0]}: host devices are not passed into workspaces (the VM has only its virtio disk and vsock)",
                "copy data in with `microagent cp`, or reach a host service through --vsock PORT=HOST:PORT");
        if (r.GetValue(_pid) is { } pid)
            throw Refusal($"--pid {pid}: a workspace has its own kernel and so its own process table; the host's cannot be shared",
                "drop --pid; inspect the guest's processes with `microagent exec NAME -- ps`");
        if (r.GetValue(_mount) is { Length: > 0 } m)
            throw Refusal($"--mount {m[0]}: host directories are not shared into a workspace (a VM boundary; no 9p/virtiofs share is offered), and --mount is not parsed here",
                "attach data with -v SRC:DST[:ro|rw]: SRC an ext4 image, a .tar/.tar.gz bundle or a named volume (`microagent volume create NAME`); or copy with `microagent cp`");
    }

    private static MicroagentException Refusal(string message, string remediation) => MicroagentException.Invalid(message, remediation);
}

using System.CommandLine;
using Microagent.Workspaces;

namespace Microagent.Cli.Commands;

/// <summary>
/// The platform flags of start and run (docs/ARCHITECTURE.md "Kernels and boot"): <c>--kernel</c>, <c>--arch</c>,
/// <c>--backend</c>, <c>--supervisor</c>. Parsing only; the rules are the library's (<c>BootChoices</c>).
/// </summary>
internal sealed class BootArgs
{
    private readonly Option<string?> _kernel = new("--kernel") { Description = "Boot this kernel image (vmlinuz) for this boot only; hash-verified: it must be a copy of an installed kernel (see `microagent kernel list`)" };
    private readonly Option<string?> _arch = new("--arch") { Description = "Guest architecture: x86_64 (or amd64), the only one supported" };
    private readonly Option<string?> _backend = new("--backend") { Description = "qemu-kvm or qemu-tcg (default: KVM when a probe boot works under it, else TCG); qemu-kvm where KVM is unusable is an error" };
    private readonly Option<string?> _supervisor = new("--supervisor") { Description = "The supervisor executable to spawn for this boot (default: this microagent binary)" };

    /// <summary>The help lines of these flags' examples, for the verb's description.</summary>
    public const string Examples = """
          microagent start research --kernel /srv/kernels/vmlinuz-6.1.0-40-cloud-amd64
          microagent start research --backend qemu-tcg --arch x86_64
          microagent start research --supervisor ./bin/microagent
        """;

    /// <summary>Adds the flags to <paramref name="command"/>.</summary>
    public static BootArgs AddTo(Command command)
    {
        var a = new BootArgs();
        foreach (var o in new Option[] { a._kernel, a._arch, a._backend, a._supervisor }) command.Options.Add(o);
        return a;
    }

    /// <summary><paramref name="options"/> with the flags given.</summary>
    public StartOptions Apply(ParseResult r, StartOptions options) => options with
    {
        Kernel = r.GetValue(_kernel), Arch = r.GetValue(_arch), Backend = r.GetValue(_backend), SupervisorExecutable = r.GetValue(_supervisor),
    };

    /// <summary><paramref name="options"/> with the flags given.</summary>
    public RunOptions Apply(ParseResult r, RunOptions options) => options with
    {
        Kernel = r.GetValue(_kernel), Arch = r.GetValue(_arch), Backend = r.GetValue(_backend), SupervisorExecutable = r.GetValue(_supervisor),
    };
}

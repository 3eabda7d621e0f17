using System.CommandLine;
using Microagent.Kernels;

namespace Microagent.Cli.Commands;

/// <summary><c>microagent kernel install|list|verify</c>.</summary>
internal static class KernelCommand
{
    public static Command Create()
    {
        var cmd = new Command("kernel", """
            Manage guest kernels. Each installed kernel is recorded with its sha256 and verified before every boot;
            a kernel whose file changed is refused. The default is Debian's cloud kernel, fetched by scripts/install.sh.
            """);
        cmd.Subcommands.Add(Install());
        cmd.Subcommands.Add(List());
        cmd.Subcommands.Add(Verify());
        return cmd;
    }

    private static Command Install()
    {
        var source = new Argument<string?>("source")
        {
            Description = "A Debian linux-image .deb or a kernel image (vmlinuz). Default: the cloud kernel package from scripts/install.sh",
            Arity = ArgumentArity.ZeroOrOne,
        };
        var cmd = new Command("install", "Install a kernel (from the default Debian package, a .deb, or a vmlinuz path)");
        cmd.Arguments.Add(source);
        cmd.SetAction(async (r, ct) =>
        {
            var k = await new KernelStore(GlobalOptions.Paths(r)).InstallAsync(r.GetValue(source), ct, Cli.Progress(r));
            if (r.GetValue(GlobalOptions.Json)) Cli.WriteJson(k, Cli.Json.InstalledKernel);
            else Console.WriteLine($"installed kernel {k.Version}\n  image  {k.KernelPath}\n  sha256 {k.Sha256}");
            return 0;
        });
        return cmd;
    }

    private static Command List()
    {
        var cmd = new Command("list", "List installed kernels");
        cmd.Aliases.Add("ls");
        cmd.SetAction(r =>
        {
            var store = new KernelStore(GlobalOptions.Paths(r));
            var kernels = store.List();
            var def = store.GetDefault();
            if (r.GetValue(GlobalOptions.Json))
            {
                Cli.WriteJson([.. kernels.Select(k => new KernelJson(k.Version, k.KernelPath, k.ModulesDir, k.Sha256, k.InstalledAt, k.Source, k.Version == def?.Version))], Cli.Json.ListKernelJson);
                return 0;
            }
            if (kernels.Count == 0)
            {
                Console.WriteLine("no kernels installed (run `microagent kernel install`)");
                return 0;
            }
            Console.WriteLine($"{"VERSION",-28} {"SHA256",-18} {"INSTALLED",-20} SOURCE");
            foreach (var k in kernels)
                Console.WriteLine($"{k.Version + (k.Version == def?.Version ? " *" : ""),-28} {k.Sha256[..16],-18} {k.InstalledAt.ToLocalTime():yyyy-MM-dd HH:mm:ss}  {k.Source}");
            return 0;
        });
        return cmd;
    }

    private static Command Verify()
    {
        var version = new Argument<string?>("version") { Description = "Kernel version (default: all installed)", Arity = ArgumentArity.ZeroOrOne };
        var cmd = new Command("verify", "Recompute each kernel's sha256 and compare it with the recorded one");
        cmd.Arguments.Add(version);
        cmd.SetAction(async (r, ct) =>
        {
            var store = new KernelStore(GlobalOptions.Paths(r));
            string? wanted = r.GetValue(version);
            var kernels = store.List().Where(k => wanted is null || k.Version == wanted).ToList();
            if (kernels.Count == 0)
                throw Errors.MicroagentException.NotFound(wanted is null ? "no kernels installed" : $"kernel {wanted} is not installed",
                    "run `microagent kernel install`");
            foreach (var k in kernels)
            {
                await store.VerifyAsync(k, ct);
                if (!r.GetValue(GlobalOptions.Json)) Console.WriteLine($"ok  {k.Version}  sha256 {k.Sha256}");
            }
            if (r.GetValue(GlobalOptions.Json)) Cli.WriteJson([.. kernels.Select(k => new KernelVerifiedJson(k.Version, k.Sha256, true))], Cli.Json.ListKernelVerifiedJson);
            return 0;
        });
        return cmd;
    }
}

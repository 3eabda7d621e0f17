using System.CommandLine;
using Microagent.Kernels;

namespace Microagent.Cli.Commands;

/// <summary><c>microagent kernel install|list|verify|check</c>.</summary>
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
        cmd.Subcommands.Add(Check());
        return cmd;
    }

    private static Command Install()
    {
        var source = new Argument<string?>("source")
        {
            Description = "A Debian linux-image .deb or a kernel image (vmlinuz). Default: the cloud kernel package from scripts/install.sh",
            Arity = ArgumentArity.ZeroOrOne,
        };
        var from = new Option<string?>("--from") { Description = "A Debian linux-image .deb or a vmlinuz file on this host (same as SOURCE)" };
        var url = new Option<string?>("--url") { Description = "Download the .deb or vmlinuz from this http(s) URL (needs --sha256)" };
        var sha = new Option<string?>("--sha256") { Description = "The file's sha256 (64 hex digits): checked before anything is installed" };
        var version = new Option<string?>("--version") { Description = "Install this kernel version from the package cache (/var/cache/microagent/kernel)" };
        var cmd = new Command("install", """
            Install a kernel: from a path (a .deb or vmlinuz), a URL (with --sha256), a version in the package cache, or by default
            the Debian cloud kernel that scripts/install.sh downloaded. Reinstalling a version replaces it.

            Examples:
              microagent kernel install
              microagent kernel install --from ./linux-image-6.1.0-57-cloud-amd64_6.1.192-3_amd64.deb
              microagent kernel install --url https://example.org/linux-image.deb --sha256 9f86d08...
              microagent kernel install --version 6.1.0-57-cloud-amd64 --json
            """);
        cmd.Arguments.Add(source);
        foreach (var o in new Option[] { from, url, sha, version }) cmd.Options.Add(o);
        cmd.SetAction(async (r, ct) =>
        {
            if (r.GetValue(source) is not null && r.GetValue(from) is not null)
                throw Errors.MicroagentException.Invalid("give the kernel source once: SOURCE or --from", "e.g. `microagent kernel install --from PATH`");
            var k = await new KernelSources(GlobalOptions.Paths(r)).InstallAsync(new KernelInstallRequest
            {
                From = r.GetValue(source) ?? r.GetValue(from),
                Url = r.GetValue(url),
                Sha256 = r.GetValue(sha),
                Version = r.GetValue(version),
            }, Cli.Progress(r), ct);
            if (r.GetValue(GlobalOptions.Json)) Cli.WriteJson(k, Cli.Json.InstalledKernel);
            else Console.WriteLine($"installed kernel {k.Version}\n  image  {k.KernelPath}\n  sha256 {k.Sha256}");
            return 0;
        });
        return cmd;
    }

    private static Command List()
    {
        var cmd = new Command("list", "List installed kernels; * marks the default.\n\nExamples:\n  microagent kernel list\n  microagent kernel ls --json");
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

    private static Command Check()
    {
        var cmd = new Command("check", """
            Is the kernel that boots would use installed, and does its image still have its recorded sha256? Exit 0 when it does,
            1 when it does not (with what to do).

            Examples:
              microagent kernel check
              microagent kernel check --json
            """);
        cmd.SetAction(async (r, ct) =>
        {
            var check = await new KernelSources(GlobalOptions.Paths(r)).CheckAsync(ct);
            if (r.GetValue(GlobalOptions.Json)) Cli.WriteJson(check, Cli.Json.KernelCheck);
            else if (check.Ok) Console.WriteLine($"ok  {check.Kernel!.Version}  sha256 {check.Kernel.Sha256}  ({check.Kernel.KernelPath})");
            else Console.Error.WriteLine($"error: {check.Problem}{(check.Remediation is { } h ? $"\n  hint: {h}" : "")}");
            return check.Ok ? 0 : 1;
        });
        return cmd;
    }

    private static Command Verify()
    {
        var version = new Argument<string?>("version") { Description = "Kernel version (default: all installed)", Arity = ArgumentArity.ZeroOrOne };
        var path = new Option<string?>("--path") { Description = "Check this file instead of installed kernels (with --sha256)" };
        var sha = new Option<string?>("--sha256") { Description = "The sha256 --path must have (64 hex digits)" };
        var cmd = new Command("verify", """
            Recompute each installed kernel's sha256 and compare it with the recorded one; or, with --path and --sha256, check any
            file (a downloaded package, a vmlinuz) before installing it. A mismatch exits 1.

            Examples:
              microagent kernel verify
              microagent kernel verify 6.1.0-57-cloud-amd64
              microagent kernel verify --path ./linux-image.deb --sha256 9f86d081884c7d65...
            """);
        cmd.Arguments.Add(version);
        cmd.Options.Add(path);
        cmd.Options.Add(sha);
        cmd.SetAction(async (r, ct) =>
        {
            if (r.GetValue(path) is { } file)
            {
                if (r.GetValue(version) is not null) throw Errors.MicroagentException.Invalid("give VERSION or --path, not both", "see `microagent kernel verify --help`");
                var check = await KernelSources.VerifyFileAsync(file, r.GetValue(sha) ?? throw new Errors.MicroagentException(Errors.ErrorKind.Invalid,
                    "--path needs --sha256 HEX: the digest the file must have", "e.g. `microagent kernel verify --path FILE --sha256 $(sha256sum FILE)`") { Field = "sha256" }, ct);
                if (r.GetValue(GlobalOptions.Json)) Cli.WriteJson(check, Cli.Json.KernelFileCheck);
                else Console.WriteLine($"ok  {check.Path}  sha256 {check.Sha256} ({Render.Bytes(check.Bytes)})");
                return 0;
            }
            if (r.GetValue(sha) is not null) throw Errors.MicroagentException.Invalid("--sha256 goes with --path FILE", "installed kernels are checked against their recorded sha256");
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

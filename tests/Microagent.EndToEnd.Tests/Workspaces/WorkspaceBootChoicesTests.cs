using System.Text.Json;

namespace Microagent.EndToEnd.Tests.Workspaces;

/// <summary>
/// <c>start</c>'s one-boot platform flags through the real binary (docs/ARCHITECTURE.md "Kernels and boot"): a copy of the
/// installed kernel boots, a damaged copy is refused before anything boots, another architecture and KVM where the probe
/// failed are clear errors.
/// </summary>
public sealed class WorkspaceBootChoicesTests
{
    private const string Name = "boot-choices";

    private static Task<CliResult> Ma(params string[] args) => MicroagentCli.RunAsync(args);

    private static JsonElement Json(CliResult r) => JsonDocument.Parse(r.Stdout).RootElement;

    private static JsonElement Refused(CliResult r)
    {
        Assert.NotEqual(0, r.ExitCode);
        return Json(r).GetProperty("error");
    }

    [Fact]
    public async Task A_copy_of_the_installed_kernel_boots_and_a_damaged_copy_another_arch_and_unusable_kvm_are_refused()
    {
        string dir = Directory.CreateTempSubdirectory("ma-kernel-").FullName;
        string copy = Path.Combine(dir, "vmlinuz");
        try
        {
            await Ma("delete", Name, "--force");
            Assert.Equal(0, (await Ma("create", Name)).ExitCode);

            var arch = Refused(await Ma("start", Name, "--arch", "arm64", "--json"));
            Assert.Equal("unsupported", arch.GetProperty("kind").GetString());
            Assert.Equal("--arch", arch.GetProperty("flag").GetString());
            Assert.Contains("x86_64", arch.GetProperty("message").GetString());

            var kvm = await Ma("start", Name, "--backend", "qemu-kvm", "--json");
            if (kvm.ExitCode == 0) // a host where KVM works
            {
                Assert.Equal("kvm", Json(kvm).GetProperty("boot").GetProperty("accelerator").GetString());
                Assert.Equal(0, (await Ma("halt", Name)).ExitCode);
            }
            else
            {
                var e = Json(kvm).GetProperty("error");
                Assert.Equal("unsupported", e.GetProperty("kind").GetString());
                Assert.Equal("--backend", e.GetProperty("flag").GetString());
                Assert.Contains("KVM cannot run guests on this host", e.GetProperty("message").GetString());
                Assert.Contains("qemu-tcg", e.GetProperty("remediation").GetString());
                Assert.Equal("prepared", Json(await Ma("status", Name, "--json")).GetProperty("state").GetString());
            }

            // The backend check has the default kernel installed (the probe boots it) when no boot did before.
            var installed = Json(await Ma("kernel", "list", "--json")).EnumerateArray().First(k => k.GetProperty("isDefault").GetBoolean());
            File.Copy(installed.GetProperty("kernelPath").GetString()!, copy);
            var booted = await Ma("start", Name, "--kernel", copy, "--backend", "qemu-tcg", "--arch", "amd64", "--json");
            Assert.True(booted.ExitCode == 0, booted.Stdout + booted.Stderr);
            var boot = Json(booted).GetProperty("boot");
            Assert.Equal("tcg", boot.GetProperty("accelerator").GetString());
            Assert.Equal(installed.GetProperty("sha256").GetString(), boot.GetProperty("kernelSha256").GetString());
            Assert.Equal(copy, boot.GetProperty("kernelOverride").GetString());
            var uname = await Ma("exec", Name, "--", "uname", "-r");
            Assert.Equal(installed.GetProperty("version").GetString(), uname.Stdout.Trim());
            Assert.Equal(0, (await Ma("halt", Name)).ExitCode);

            byte[] bytes = File.ReadAllBytes(copy);
            bytes[bytes.Length / 2] ^= 0x5A; // deep in the compressed payload: the header still says the same version
            File.WriteAllBytes(copy, bytes);
            var damaged = Refused(await Ma("start", Name, "--kernel", copy, "--json"));
            Assert.Equal("invalid", damaged.GetProperty("kind").GetString());
            Assert.Equal("--kernel", damaged.GetProperty("flag").GetString());
            string message = damaged.GetProperty("message").GetString()!;
            Assert.Contains("damaged copy", message);
            Assert.Contains(installed.GetProperty("sha256").GetString()!, message);
            Assert.Contains("kernel install", damaged.GetProperty("remediation").GetString());
            Assert.Equal("halted", Json(await Ma("status", Name, "--json")).GetProperty("state").GetString());
        }
        finally
        {
            await Ma("delete", Name, "--force");
            Directory.Delete(dir, true);
        }
    }
}

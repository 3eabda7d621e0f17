using System.Text.Json;

namespace Microagent.EndToEnd.Tests.Cli;

/// <summary>`doctor` and `kernel install|list|verify` against the real host and the real Debian kernel package.</summary>
public sealed class DoctorAndKernelTests
{
    [Fact]
    public async Task Doctor_reports_qemu_and_the_accelerator_with_a_reason()
    {
        await MicroagentCli.RunAsync(["kernel", "install"]);
        var r = await MicroagentCli.RunAsync(["doctor", "--json"]);
        using var doc = JsonDocument.Parse(r.Stdout);
        var root = doc.RootElement;
        Assert.True(root.GetProperty("healthy").GetBoolean(), r.Stdout);
        var checks = root.GetProperty("checks").EnumerateArray().ToDictionary(c => c.GetProperty("name").GetString()!);
        Assert.Contains("QEMU 10", checks["qemu"].GetProperty("detail").GetString());
        Assert.Equal("ok", checks["e2fsprogs"].GetProperty("status").GetString());
        var accel = root.GetProperty("accelerator");
        Assert.True(accel.GetProperty("probed").GetBoolean() || Environment.GetEnvironmentVariable("MICROAGENT_ACCEL") is not null);
        Assert.False(string.IsNullOrEmpty(accel.GetProperty("reason").GetString()));
        if (Directory.Exists("/sys/module/kvm_pvm"))
        {
            Assert.Equal("tcg", accel.GetProperty("name").GetString());
            Assert.Contains("PVM", accel.GetProperty("reason").GetString());
            Assert.Contains("PVM-only", checks["kvm-host"].GetProperty("detail").GetString());
        }
        var text = await MicroagentCli.RunAsync(["doctor"]);
        Assert.Equal(0, text.ExitCode);
        Assert.Contains("accelerator", text.Stdout);
    }

    [Fact]
    public async Task A_kernel_whose_file_changed_is_refused()
    {
        string state = Path.Combine("/tmp", $"ma-e2e-k-{Environment.ProcessId}");
        try
        {
            var install = await MicroagentCli.RunAsync(["kernel", "install", "--json"], stateDir: state);
            Assert.Equal(0, install.ExitCode);
            using var installed = JsonDocument.Parse(install.Stdout);
            string kernelPath = installed.RootElement.GetProperty("kernelPath").GetString()!;
            string sha = installed.RootElement.GetProperty("sha256").GetString()!;
            Assert.Equal(64, sha.Length);

            var list = await MicroagentCli.RunAsync(["kernel", "list", "--json"], stateDir: state);
            Assert.Contains(sha, list.Stdout);
            Assert.Equal(0, (await MicroagentCli.RunAsync(["kernel", "verify"], stateDir: state)).ExitCode);

            await File.AppendAllTextAsync(kernelPath, "tampered");
            var verify = await MicroagentCli.RunAsync(["kernel", "verify", "--json"], stateDir: state);
            Assert.Equal(1, verify.ExitCode);
            using var err = JsonDocument.Parse(verify.Stdout);
            Assert.Contains("sha256", err.RootElement.GetProperty("error").GetProperty("message").GetString());

            var run = await MicroagentCli.RunAsync(["run", "--", "true"], stateDir: state);
            Assert.Equal(1, run.ExitCode);
            Assert.Contains("sha256", run.Stderr);
            Assert.Empty(MicroagentCli.QemuProcessesUnder(state));
        }
        finally
        {
            if (Directory.Exists(state)) Directory.Delete(state, true);
        }
    }
}

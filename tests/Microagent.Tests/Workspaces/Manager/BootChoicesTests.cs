using Microagent.Errors;
using Microagent.Tests.Images;
using Microagent.Workspaces;
using Microagent.Workspaces.Manager;

namespace Microagent.Tests.Workspaces.Manager;

/// <summary>A start's platform choices are checked before anything is recorded or spawned.</summary>
public sealed class BootChoicesTests : IDisposable
{
    private readonly TempDir _tmp = new();
    private readonly StatePaths _paths;

    public BootChoicesTests() => _paths = new StatePaths(Path.Combine(_tmp.Path, "state"));

    public void Dispose() => _tmp.Dispose();

    private Task<string?> Check(StartOptions o) => BootChoices.CheckAsync(_paths, o, default);

    [Fact]
    public async Task No_choices_mean_the_defaults()
    {
        Assert.Null(await Check(new StartOptions()));
        Assert.Null(await Check(new StartOptions { Arch = "amd64", Backend = "qemu-tcg" }));
    }

    [Fact]
    public async Task Another_architecture_and_an_unknown_backend_are_refused_with_their_fields()
    {
        var arch = await Assert.ThrowsAsync<MicroagentException>(() => Check(new StartOptions { Arch = "arm64" }));
        Assert.Equal((ErrorKind.Unsupported, "arch"), (arch.Kind, arch.Field));
        var backend = await Assert.ThrowsAsync<MicroagentException>(() => Check(new StartOptions { Backend = "xen" }));
        Assert.Equal((ErrorKind.Invalid, "backend"), (backend.Kind, backend.Field));
    }

    [Fact]
    public async Task The_supervisor_must_be_an_existing_executable_and_comes_back_as_a_full_path()
    {
        var missing = await Assert.ThrowsAsync<MicroagentException>(() => Check(new StartOptions { SupervisorExecutable = Path.Combine(_tmp.Path, "none") }));
        Assert.Equal((ErrorKind.NotFound, "supervisor"), (missing.Kind, missing.Field));

        string plain = Path.Combine(_tmp.Path, "plain");
        File.WriteAllText(plain, "#!/bin/sh\n");
        File.SetUnixFileMode(plain, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        var notExec = await Assert.ThrowsAsync<MicroagentException>(() => Check(new StartOptions { SupervisorExecutable = plain }));
        Assert.Equal((ErrorKind.Invalid, "supervisor"), (notExec.Kind, notExec.Field));
        Assert.Contains("chmod +x", notExec.Remediation);

        File.SetUnixFileMode(plain, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        string relative = Path.GetRelativePath(Environment.CurrentDirectory, plain);
        Assert.Equal(plain, await Check(new StartOptions { SupervisorExecutable = relative }));
    }

    [Fact]
    public async Task A_kernel_that_is_no_installed_kernel_is_refused()
    {
        string junk = Path.Combine(_tmp.Path, "vmlinuz");
        File.WriteAllText(junk, "junk");
        var e = await Assert.ThrowsAsync<MicroagentException>(() => Check(new StartOptions { Kernel = junk }));
        Assert.Equal((ErrorKind.Invalid, "kernel"), (e.Kind, e.Field));
    }
}

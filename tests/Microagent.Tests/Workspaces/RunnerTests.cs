using Microagent.Images;
using Microagent.Protocol;
using Microagent.Workspaces;

namespace Microagent.Tests.Workspaces;

public sealed class RunnerTests
{
    private static readonly ImageConfig Busybox = new(["PATH=/bin"], null, ["/bin/sh"], null, null);

    [Theory]
    [InlineData(ExecStatuses.Exited, 42, null, 42)]
    [InlineData(ExecStatuses.Exited, 137, null, 137)]
    [InlineData(ExecStatuses.Signaled, 137, 9, 137)]
    [InlineData(ExecStatuses.Signaled, 143, 15, 143)]
    [InlineData(ExecStatuses.TimedOut, 124, 9, 124)]
    [InlineData(ExecStatuses.FailedToStart, 127, null, 127)]
    [InlineData(ExecStatuses.FailedToStart, 126, null, 126)]
    [InlineData(ExecStatuses.FailedToStart, 0, null, 127)]
    public void Exit_codes_follow_the_status(string status, int code, int? signal, int expected)
    {
        Assert.Equal(expected, Runner.ExitCodeOf(new ExecResult { Status = status, ExitCode = code, Signal = signal }));
    }

    [Fact]
    public void Trailing_command_replaces_cmd_and_follows_entrypoint()
    {
        var withEntrypoint = Busybox with { Entrypoint = ["/bin/tini", "--"] };
        var req = Runner.BuildRequest(new RunOptions { Command = ["echo", "hi"] }, withEntrypoint);
        Assert.Equal(["/bin/tini", "--", "echo", "hi"], req.Argv);
        Assert.Equal(["/bin/sh"], Runner.BuildRequest(new RunOptions(), Busybox).Argv);
    }

    [Fact]
    public void Env_layers_over_the_image_and_output_mode_follows_streaming()
    {
        var captured = Runner.BuildRequest(new RunOptions { Command = ["true"], Env = ["A=1"] }, Busybox);
        Assert.Equal(["PATH=/bin", "A=1"], captured.Env!);
        Assert.Equal(ExecModes.Single, captured.Mode);
        Assert.Equal(Runner.SingleModeOutputCap, captured.MaxOutputBytes);
        var streamed = Runner.BuildRequest(new RunOptions { Command = ["true"], Stdout = Stream.Null }, Busybox);
        Assert.Equal(ExecModes.Stream, streamed.Mode);
        Assert.Null(streamed.MaxOutputBytes);
    }

    [Fact]
    public void No_command_and_no_image_default_is_invalid()
    {
        var e = Assert.Throws<Microagent.Errors.MicroagentException>(() => Runner.BuildRequest(new RunOptions(), Busybox with { Cmd = null }));
        Assert.Equal(Microagent.Errors.ErrorKind.Invalid, e.Kind);
    }
}

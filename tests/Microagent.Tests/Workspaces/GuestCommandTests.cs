using Microagent.Images;
using Microagent.Protocol;
using Microagent.Workspaces;

namespace Microagent.Tests.Workspaces;

public sealed class GuestCommandTests
{
    private static readonly WorkspaceConfig Config = new()
    {
        Name = "w", ImageDigest = "sha256:00", BaselinePath = "/b", Hostname = "w", Profile = "tiny",
        ImageEnv = ["PATH=/bin", "A=image"], ImageWorkingDir = "/srv", ImageUser = "app", Env = ["A=workspace"],
    };

    [Fact]
    public void Env_layers_image_then_workspace_then_call_and_the_image_gives_cwd_and_user()
    {
        var request = GuestCommand.In(Config, ["id"]).With(new ExecOptions { Command = ["id"], Env = ["A=call"] }, streaming: false).ToRequest();
        Assert.Equal(["id"], request.Argv);
        Assert.Equal(["PATH=/bin", "A=image", "A=workspace", "A=call"], request.Env!);
        Assert.Equal("/srv", request.Cwd);
        Assert.Equal("app", request.User);
        Assert.Equal(ExecModes.Single, request.Mode);
        Assert.Equal(WorkspaceLimits.SingleModeOutputCap, request.MaxOutputBytes);
        Assert.Null(request.TimeoutMs);
    }

    [Fact]
    public void Call_overrides_cwd_user_timeout_and_cap_and_streaming_is_uncapped()
    {
        var call = new ExecOptions { Command = ["id"], Cwd = "/tmp", User = "0", Timeout = TimeSpan.FromSeconds(2) };
        var streamed = GuestCommand.In(Config, ["id"]).With(call, streaming: true).ToRequest();
        Assert.Equal(("/tmp", "0", 2000L), (streamed.Cwd, streamed.User, streamed.TimeoutMs!.Value));
        Assert.Equal(ExecModes.Stream, streamed.Mode);
        Assert.Null(streamed.MaxOutputBytes);
        Assert.Equal(10, GuestCommand.In(Config, ["id"]).With(call with { MaxOutputBytes = 10 }, streaming: true).ToRequest().MaxOutputBytes);
    }

    [Fact]
    public void Empty_image_working_dir_and_user_mean_none()
    {
        var request = GuestCommand.In(Config with { ImageWorkingDir = "", ImageUser = "" }, ["id"]).ToRequest();
        Assert.Null(request.Cwd);
        Assert.Null(request.User);
    }

    [Fact]
    public void Shell_is_what_setup_and_workloads_run_as()
    {
        var request = WorkloadRunner.ShellRequest(Config, "echo hi", 64 * 1024);
        Assert.Equal(["/bin/sh", "-c", "echo hi"], request.Argv);
        Assert.Equal(["PATH=/bin", "A=image", "A=workspace"], request.Env!);
        Assert.Equal(("/srv", "app", 64 * 1024L, ExecModes.Single), (request.Cwd, request.User, request.MaxOutputBytes!.Value, request.Mode));
        Assert.Null(request.TimeoutMs);
    }

    [Fact]
    public void Tool_runs_as_root_in_the_image_env_streamed_and_uncapped()
    {
        var request = GuestCommand.Tool(Config, ["tar", "-x"]).ToRequest();
        Assert.Equal(["PATH=/bin", "A=image"], request.Env!);
        Assert.Null(request.Cwd);
        Assert.Null(request.User);
        Assert.Equal(ExecModes.Stream, request.Mode);
        Assert.Null(request.MaxOutputBytes);
    }

    [Fact]
    public void A_run_on_an_image_and_the_same_run_in_a_workspace_of_that_image_send_the_same_request()
    {
        var image = new ImageConfig(["PATH=/bin"], null, ["/bin/sh"], "/srv", "app");
        var workspace = Config with { ImageEnv = image.Env, ImageWorkingDir = image.WorkingDir, ImageUser = image.User, Env = [] };
        var run = new RunOptions { Command = ["true"], Env = ["X=1"], Timeout = TimeSpan.FromMilliseconds(1500), Stdout = Stream.Null };
        var onImage = GuestCommand.On(image, ["true"]).With(run).ToRequest();
        var inWorkspace = GuestCommand.In(workspace, ["true"]).With(run).ToRequest();
        Assert.Equal(onImage.Env, inWorkspace.Env);
        Assert.Equal((onImage.Cwd, onImage.User, onImage.TimeoutMs, onImage.MaxOutputBytes, onImage.Mode),
            (inWorkspace.Cwd, inWorkspace.User, inWorkspace.TimeoutMs, inWorkspace.MaxOutputBytes, inWorkspace.Mode));
    }

    [Fact]
    public void A_sub_millisecond_timeout_is_sent_as_one_millisecond_not_as_no_limit()
    {
        var request = GuestCommand.In(Config, ["id"]) with { Timeout = TimeSpan.FromTicks(10) };
        Assert.Equal(1, request.ToRequest().TimeoutMs);
    }
}

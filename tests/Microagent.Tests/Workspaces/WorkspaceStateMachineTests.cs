using Microagent.Errors;
using Microagent.Workspaces;

namespace Microagent.Tests.Workspaces;

public sealed class WorkspaceStateMachineTests
{
    [Theory]
    [InlineData(WorkspaceState.Prepared, WorkspaceState.Starting, true)]
    [InlineData(WorkspaceState.Halted, WorkspaceState.Starting, true)]
    [InlineData(WorkspaceState.Failed, WorkspaceState.Starting, true)]
    [InlineData(WorkspaceState.Running, WorkspaceState.Stopping, true)]
    [InlineData(WorkspaceState.Stopping, WorkspaceState.Halted, true)]
    [InlineData(WorkspaceState.Running, WorkspaceState.Halted, false)]
    [InlineData(WorkspaceState.Prepared, WorkspaceState.Running, false)]
    [InlineData(WorkspaceState.Halted, WorkspaceState.Running, false)]
    public void Transitions(WorkspaceState from, WorkspaceState to, bool allowed) =>
        Assert.Equal(allowed, WorkspaceStateMachine.CanTransition(from, to));

    [Theory]
    [InlineData(WorkspaceState.Running)]
    [InlineData(WorkspaceState.Starting)]
    [InlineData(WorkspaceState.Quarantined)]
    public void Start_is_a_conflict_when_active_or_quarantined(WorkspaceState state)
    {
        var e = Assert.Throws<WorkspaceStateException>(() => WorkspaceStateMachine.EnsureCanStart("w", state));
        Assert.Equal(ErrorKind.Conflict, e.Kind);
        if (state == WorkspaceState.Quarantined) Assert.Contains("halt", e.Remediation);
    }

    [Fact]
    public void States_serialize_in_snake_case() =>
        Assert.Equal("\"quarantined\"", System.Text.Json.JsonSerializer.Serialize(WorkspaceState.Quarantined));
}

public sealed class WorkspaceSpecTests
{
    [Theory]
    [InlineData("a/b")]
    [InlineData("..")]
    [InlineData("a..b")]
    [InlineData("")]
    [InlineData("a\0b")]
    [InlineData(".hidden")]
    [InlineData("this-name-is-far-too-long-for-a-workspace-name-really")]
    public void Bad_names_are_rejected(string name) =>
        Assert.Equal(ErrorKind.Invalid, Assert.Throws<WorkspaceSpecException>(() => WorkspaceName.Validate(name)).Kind);

    [Fact]
    public void Good_names_pass() => Assert.Equal("research-1.x_y", WorkspaceName.Validate("research-1.x_y"));

    [Fact]
    public void Vsock_mappings_parse()
    {
        Assert.Equal(new VsockMapping(5000, "127.0.0.1", 8080), VsockMapping.Parse("5000=127.0.0.1:8080"));
        Assert.Equal(new VsockMapping(5000, "127.0.0.1", 8080), VsockMapping.Parse("5000=8080"));
        Assert.Equal(new VsockMapping(7, "::1", 80), VsockMapping.Parse("7=[::1]:80"));
        Assert.Throws<WorkspaceSpecException>(() => VsockMapping.Parse("x=1:2"));
        Assert.Throws<WorkspaceSpecException>(() => VsockMapping.Parse("1025=127.0.0.1:80"));
        Assert.Throws<WorkspaceSpecException>(() => VsockMapping.Parse("5000=127.0.0.1:99999"));
    }

    [Fact]
    public void Profiles_match_the_issue()
    {
        Assert.Equal(new WorkspaceProfile("small", 512, 2, 1024), WorkspaceProfile.Parse("small"));
        Assert.Equal(new WorkspaceProfile("large", 4096, 4, 16384), WorkspaceProfile.Parse("LARGE"));
        Assert.Throws<WorkspaceSpecException>(() => WorkspaceProfile.Parse("huge"));
    }

    [Fact]
    public void Spec_file_parses_and_flags_override()
    {
        var spec = WorkspaceSpecFile.Parse("""
            name: research
            image: 127.0.0.1:5000/tools/python:3.11
            profile: small
            setup: pip --version
            exec: python3 job.py
            env: [A=1]
            size-mib: 2048
            ttl: 600
            vsock: ["5000=127.0.0.1:8080"]
            """);
        Assert.Equal("research", spec.Name);
        Assert.Equal(["pip --version"], spec.Setup);
        Assert.Equal(2048, spec.SizeMiB);
        Assert.Equal(600, spec.TtlSeconds);
        Assert.Equal(5000u, Assert.Single(spec.Vsock).GuestPort);
        var merged = spec.With(new WorkspaceSpec { Profile = "tiny", Env = ["B=2"] });
        Assert.Equal("tiny", merged.Profile);
        Assert.Equal(["A=1", "B=2"], merged.Env);
        Assert.Equal("python3 job.py", merged.Exec);
        var map = WorkspaceSpecFile.Parse("env:\n  K: v\n");
        Assert.Equal(["K=v"], map.Env);
        Assert.Throws<WorkspaceSpecException>(() => WorkspaceSpecFile.Parse("nmae: typo\n"));
    }
}

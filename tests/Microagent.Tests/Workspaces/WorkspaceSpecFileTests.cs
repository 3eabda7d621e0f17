using Microagent.Workspaces;

namespace Microagent.Tests.Workspaces;

public class WorkspaceSpecFileTests
{
    [Fact]
    public void Every_key_in_both_spellings()
    {
        var spec = WorkspaceSpecFile.Parse("""
            # a comment
            name: research
            image: 127.0.0.1:5000/tools/python:3.11
            hostname: box
            profile: small
            memory: 512
            cpus: 2
            sizeMib: 2048
            ttl: 60
            setup:
              - echo one
              - |
                echo two
                echo three
            exec: python3 job.py
            env: {A: "1", B: two words}
            vsock: ["5000=127.0.0.1:8080", "5001=9090"]
            mediation:
              port: 3000
              target: 127.0.0.1:9900
              fail-closed: no
              required: false
            """);
        Assert.Equal("research", spec.Name);
        Assert.Equal("box", spec.Hostname);
        Assert.Equal((512, 2, 2048, 60), (spec.MemoryMiB, spec.Cpus, spec.SizeMiB, spec.TtlSeconds));
        Assert.Equal(["echo one", "echo two\necho three\n"], spec.Setup);
        Assert.Equal(["A=1", "B=two words"], spec.Env);
        Assert.Equal([5000u, 5001u], spec.Vsock.Select(v => v.GuestPort));
        var m = Assert.IsType<Microagent.Mediation.MediationConfig>(spec.Mediation);
        Assert.Equal((3000u, false, false), (m.Port, m.FailClosed, m.Required));
        Assert.Equal(2048, WorkspaceSpecFile.Parse("size-mib: 2048\n").SizeMiB);
    }

    [Fact]
    public void An_empty_document_is_an_empty_spec()
    {
        Assert.Null(WorkspaceSpecFile.Parse("").Name);
        Assert.Null(WorkspaceSpecFile.Parse("# only a comment\n").Image);
        Assert.Empty(WorkspaceSpecFile.Parse("env:\nsetup:\n").Env);
    }

    [Theory]
    [InlineData("name: a\nmemroy: 5\n", "microagent.yaml:2: unknown key 'memroy'")]
    [InlineData("cpus: two\n", "'two' is not a whole number")]
    [InlineData("name: [a, b]\n", "expected a single value")]
    [InlineData("- just\n- a list\n", "must be a mapping")]
    [InlineData("mediation:\n  target: 127.0.0.1:1\n  failclosed: true\n", "unknown key 'mediation.failclosed'")]
    [InlineData("mediation:\n  target: 127.0.0.1:1\n  required: maybe\n", "'maybe' is not true or false")]
    [InlineData("setup: {a: b}\n", "setup must be a string or a list")]
    [InlineData("name: a\n  bad: indent\n", "microagent.yaml:")]
    public void Mistakes_are_named_with_their_line(string yaml, string expected)
    {
        var e = Assert.Throws<WorkspaceSpecException>(() => WorkspaceSpecFile.Parse(yaml));
        Assert.Contains(expected, e.Message);
        Assert.NotNull(e.Remediation);
    }
}

namespace Microagent.EndToEnd.Tests.Networking;

/// <summary>The real bin/microagent: the supervisor sets the guest's network up after the hello (default mode user).</summary>
public sealed class SupervisorNetworkTests
{
    [Fact]
    public async Task Run_boots_with_the_user_network_set_up()
    {
        CliResult r = await MicroagentCli.RunAsync(["run", "--", "sh", "-c", "cat /etc/resolv.conf; ls /sys/class/net | tr '\\n' ' '"]);
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Contains("nameserver 127.0.0.1", r.Stdout);
        Assert.Contains("dummy0 lo ", r.Stdout);
    }
}

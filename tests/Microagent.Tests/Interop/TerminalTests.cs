using Microagent.Interop;

namespace Microagent.Tests.Interop;

/// <summary>
/// <see cref="Terminal"/> on descriptors that are not terminals (a pipe, /dev/null): nothing to prompt on, and no settings
/// changed. The terminal case itself runs on a real pseudo-terminal in the end-to-end RegistryLoginTerminalTests.
/// </summary>
public sealed class TerminalTests
{
    [Fact]
    public void A_pipe_is_not_a_terminal_and_its_settings_cannot_be_changed()
    {
        var (read, write) = FileDescriptors.Pipe();
        using (read)
        using (write)
        {
            Assert.False(Terminal.IsTerminal(read.DangerousFd));
            var e = Assert.Throws<SyscallException>(() => Terminal.EnterSecretInput(read.DangerousFd));
            Assert.Equal("tcgetattr", e.Call);
            Assert.Equal(Errno.ENOTTY, e.Errno);
        }
    }

    [Fact]
    public void A_character_device_that_is_not_a_terminal_is_not_one()
    {
        using var devNull = File.OpenHandle("/dev/null");
        Assert.False(Terminal.IsTerminal((int)devNull.DangerousGetHandle()));
    }

    [Fact]
    public void A_closed_descriptor_is_not_a_terminal() => Assert.False(Terminal.IsTerminal(-1));
}

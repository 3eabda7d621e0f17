using System.Text;
using Microagent.Errors;
using Microagent.Protocol;
using Microagent.Workspaces;

namespace Microagent.Tests.Workspaces.Console;

/// <summary>The framing of the console: its frames on the wire, the markers of a sent line, the detach keys (docs/ARCHITECTURE.md "Console").</summary>
public sealed class ConsoleLineTests
{
    private const string Nonce = "0123456789abcdef";

    private static byte[] B(string s) => Encoding.UTF8.GetBytes(s);

    [Fact]
    public void The_scanner_takes_only_what_lies_between_the_markers_even_split_across_chunks()
    {
        var scanner = new ConsoleLine.Scanner(Nonce);
        // The echo of the preamble spells RS as \036: it never matches.
        string stream = "banner\r\n$ " + ConsoleLine.Preamble(Nonce) + $"\u001eMA-BEGIN-{Nonce}\u001e\nhi\nthere\n\u001eMA-END-{Nonce}:3\u001e\nlater";
        byte[] bytes = B(stream);
        for (int i = 0; i < bytes.Length; i += 5) scanner.Feed(bytes.AsSpan(i, Math.Min(5, bytes.Length - i)));
        Assert.True(scanner.Ended);
        Assert.Equal("hi\nthere\n", scanner.Output);
        Assert.Equal(3, scanner.ExitCode);
    }

    [Fact]
    public void Before_the_begin_marker_nothing_is_output_and_a_marker_of_another_nonce_is_not_the_end()
    {
        var scanner = new ConsoleLine.Scanner(Nonce);
        scanner.Feed(B("noise " + ConsoleLine.Command("echo x", Nonce)));
        Assert.False(scanner.Begun);
        Assert.Equal("", scanner.Partial);
        scanner.Feed(B($"\u001eMA-BEGIN-{Nonce}\u001e\nabc\u001eMA-END-ffffffffffffffff:0\u001e\n"));
        Assert.True(scanner.Begun);
        Assert.False(scanner.Ended);
        Assert.StartsWith("abc", scanner.Partial);
    }

    [Fact]
    public void The_commands_print_the_markers_with_a_printf_format_and_the_status_of_the_line()
    {
        Assert.Contains("stty -echo -onlcr", ConsoleLine.Preamble(Nonce));
        Assert.EndsWith($"printf '\\036MA-BEGIN-%s\\036\\n' {Nonce}\n", ConsoleLine.Preamble(Nonce));
        Assert.Equal($"uname -n\nprintf '\\036MA-END-%s:%d\\036\\n' {Nonce} \"$?\"\n", ConsoleLine.Command("uname -n", Nonce));
        Assert.Matches("^[0-9a-f]{16}$", ConsoleLine.NewNonce());
        Assert.NotEqual(ConsoleLine.NewNonce(), ConsoleLine.NewNonce());
    }

    [Theory]
    [InlineData("")]
    [InlineData("   ")]
    [InlineData("echo a\necho b")]
    [InlineData("echo a\r")]
    [InlineData("a\0b")]
    public void Validate_refuses_anything_but_one_line(string line)
    {
        var e = Assert.Throws<MicroagentException>(() => ConsoleLine.Validate(line));
        Assert.Equal(ErrorKind.Invalid, e.Kind);
        Assert.Equal("line", e.Field);
    }

    [Fact]
    public void Validate_refuses_a_line_over_the_limit_and_accepts_one_at_it()
    {
        ConsoleLine.Validate(new string('x', ConsoleLine.MaxLineBytes));
        Assert.Throws<MicroagentException>(() => ConsoleLine.Validate(new string('x', ConsoleLine.MaxLineBytes + 1)));
    }

    [Fact]
    public void Console_frames_round_trip_through_the_frame_codec()
    {
        var open = new Request { Type = ConsoleRequestTypes.Console, Console = new ConsoleRequest { Rows = 50, Cols = 132, Term = "xterm", Shell = "/bin/bash", Env = ["A=1"] } };
        byte[] frame = Frame.Encode(open, ProtocolJson.Default.Request);
        Assert.Equal(frame.Length - Frame.HeaderBytes, Frame.ReadLength(frame));
        var back = Frame.Decode(frame.AsSpan(Frame.HeaderBytes), ProtocolJson.Default.Request);
        Assert.Equal((ConsoleRequestTypes.Console, 50, 132, "xterm", "/bin/bash"), (back.Type, back.Console!.Rows, back.Console.Cols, back.Console.Term, back.Console.Shell));
        string resize = Encoding.UTF8.GetString(Frame.Encode(new Request { Type = ConsoleRequestTypes.Resize, Console = new ConsoleRequest { Rows = 30, Cols = 100 } },
            ProtocolJson.Default.Request).AsSpan(Frame.HeaderBytes));
        Assert.Equal("""{"v":1,"type":"resize","eof":false,"console":{"rows":30,"cols":100}}""", resize);
        Assert.True(ConsoleInfo.IsValidSize(1, 1000));
        Assert.False(ConsoleInfo.IsValidSize(0, 80));
        Assert.False(ConsoleInfo.IsValidSize(24, 1001));
    }

    [Fact]
    public void Detach_keys_are_ctrl_bracket_or_ctrl_p_ctrl_q_and_everything_else_passes()
    {
        var keys = new ConsoleDetachKeys();
        var forward = new List<byte>();
        Assert.False(keys.Filter(B("ls\r"), forward));
        Assert.Equal(B("ls\r"), forward);

        forward.Clear();
        Assert.True(keys.Filter([(byte)'a', ConsoleDetachKeys.CtrlBracket, (byte)'b'], forward));
        Assert.Equal([(byte)'a'], forward);

        // Ctrl-P held across chunks, then Ctrl-Q: detach, nothing forwarded.
        keys = new ConsoleDetachKeys();
        forward.Clear();
        Assert.False(keys.Filter([(byte)'x', ConsoleDetachKeys.CtrlP], forward));
        Assert.Equal([(byte)'x'], forward);
        Assert.True(keys.Filter([ConsoleDetachKeys.CtrlQ], forward));
        Assert.Equal([(byte)'x'], forward);

        // Ctrl-P followed by anything else is passed on before it (Ctrl-P Ctrl-P: the first goes, the second is held).
        keys = new ConsoleDetachKeys();
        forward.Clear();
        Assert.False(keys.Filter([ConsoleDetachKeys.CtrlP, (byte)'k', ConsoleDetachKeys.CtrlP, ConsoleDetachKeys.CtrlP], forward));
        Assert.Equal([ConsoleDetachKeys.CtrlP, (byte)'k', ConsoleDetachKeys.CtrlP], forward);
    }
}

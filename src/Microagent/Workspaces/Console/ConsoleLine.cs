using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Microagent.Errors;

namespace Microagent.Workspaces;

/// <summary>
/// One line run through a console session, non-interactively (<c>connect --send</c>; docs/ARCHITECTURE.md "Console"). How the
/// line's output is told apart from everything else on the terminal:
/// <list type="number">
/// <item>A preamble line turns the terminal's echo and its newline translation off (<c>stty -echo -onlcr</c>), bracketed
/// paste off (bash), the prompts empty, then prints the begin marker. Everything before the marker (the login shell's
/// banner, the echo of the preamble itself) is dropped.</item>
/// <item>Only once the begin marker arrived (echo is off from then on) the line is typed, followed by a line that prints the
/// end marker with the line's exit status (<c>$?</c>). What arrives between the two markers is the line's output.</item>
/// </list>
/// A marker is <c>RS "MA-BEGIN-" nonce RS LF</c> (the LF not part of the output) / <c>RS "MA-END-" nonce ":" status RS LF</c> (RS = 0x1E) with a random nonce per
/// call. The commands that print them spell RS as <c>\036</c> in a printf format, so an echo of the command never matches.
/// A line that exits the shell ends the session instead: its output so far and the shell's exit code are the result. The
/// line must not read the terminal (it would consume the end-marker line).
/// </summary>
internal static class ConsoleLine
{
    /// <summary>Longest line accepted (a terminal in canonical mode keeps at most 4095 bytes of one line).</summary>
    public const int MaxLineBytes = 4000;

    /// <summary>Default time the whole exchange may take.</summary>
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(5);

    private const byte RS = 0x1E;

    /// <summary>Throws <c>invalid</c> when <paramref name="line"/> is not one non-empty line of at most <see cref="MaxLineBytes"/>.</summary>
    public static void Validate(string? line)
    {
        if (string.IsNullOrWhiteSpace(line)) throw Invalid("the line to send is empty", "give the command line to run");
        if (line.IndexOfAny(['\n', '\r', '\0']) >= 0)
            throw Invalid("the line to send must be one line (no newline, carriage return or NUL)", "send one line per call; join commands with `;`");
        if (Encoding.UTF8.GetByteCount(line) > MaxLineBytes)
            throw Invalid($"the line to send is longer than {MaxLineBytes} bytes", "put a longer script into a file (`microagent cp`) and run that");

        static MicroagentException Invalid(string message, string remediation) => new(ErrorKind.Invalid, message, remediation) { Field = "line" };
    }

    /// <summary>A fresh nonce: 16 hex digits.</summary>
    public static string NewNonce() => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8));

    /// <summary>The preamble: quiet terminal, empty prompts, then the begin marker.</summary>
    public static string Preamble(string nonce) =>
        "stty -echo -onlcr 2>/dev/null; bind 'set enable-bracketed-paste off' 2>/dev/null; PS1=''; PS2=''; PROMPT_COMMAND=''; " +
        $"printf '\\036MA-BEGIN-%s\\036\\n' {nonce}\n";

    /// <summary>The line, then the command that prints the end marker with its status.</summary>
    public static string Command(string line, string nonce) => $"{line}\nprintf '\\036MA-END-%s:%d\\036\\n' {nonce} \"$?\"\n";

    /// <summary>Finds the markers in the terminal's output as it arrives.</summary>
    internal sealed class Scanner(string nonce)
    {
        private readonly byte[] _begin = [RS, .. Encoding.ASCII.GetBytes($"MA-BEGIN-{nonce}"), RS];
        private readonly byte[] _end = [RS, .. Encoding.ASCII.GetBytes($"MA-END-{nonce}:")];
        private readonly List<byte> _pending = [];
        private readonly MemoryStream _output = new();

        /// <summary>The begin marker has arrived.</summary>
        public bool Begun { get; private set; }

        /// <summary>The end marker has arrived; <see cref="ExitCode"/> is the line's status.</summary>
        public bool Ended { get; private set; }

        /// <summary>The status the end marker carried.</summary>
        public int ExitCode { get; private set; }

        /// <summary>The line's output so far (complete once <see cref="Ended"/>).</summary>
        public string Output => Text(_output.ToArray());

        // The begin marker's own newline (CR LF if the terminal still translates newlines) is not the line's.
        private static string Text(byte[] bytes)
        {
            string text = Encoding.UTF8.GetString(bytes);
            return text.StartsWith("\r\n", StringComparison.Ordinal) ? text[2..] : text.StartsWith('\n') ? text[1..] : text;
        }

        /// <summary>Takes more terminal output.</summary>
        public void Feed(ReadOnlySpan<byte> data)
        {
            if (Ended) return;
            _pending.AddRange(data.ToArray());
            if (!Begun)
            {
                int at = IndexOf(_pending, _begin);
                if (at < 0) return;
                Begun = true;
                _pending.RemoveRange(0, at + _begin.Length);
            }
            int end = IndexOf(_pending, _end);
            if (end < 0)
            {
                // Keep back what could be the start of the end marker; the rest is output.
                int keep = Math.Min(_pending.Count, _end.Length + 12);
                int take = _pending.Count - keep;
                _output.Write(_pending.GetRange(0, take).ToArray());
                _pending.RemoveRange(0, take);
                return;
            }
            int close = _pending.IndexOf(RS, end + _end.Length);
            if (close < 0) return;
            _output.Write(_pending.GetRange(0, end).ToArray());
            string status = Encoding.ASCII.GetString(_pending.GetRange(end + _end.Length, close - end - _end.Length).ToArray());
            ExitCode = int.TryParse(status, NumberStyles.None, CultureInfo.InvariantCulture, out int code) ? code : -1;
            Ended = true;
        }

        /// <summary>Output so far including what is held back (for a timeout's partial output).</summary>
        public string Partial => Begun ? Text([.. _output.ToArray(), .. _pending]) : "";

        private static int IndexOf(List<byte> haystack, byte[] needle)
        {
            for (int i = 0; i + needle.Length <= haystack.Count; i++)
            {
                int j = 0;
                while (j < needle.Length && haystack[i + j] == needle[j]) j++;
                if (j == needle.Length) return i;
            }
            return -1;
        }
    }

    /// <summary>Runs <paramref name="line"/> in <paramref name="console"/> (a fresh session, closed by the caller) as described above.</summary>
    public static async Task<ConsoleSendResult> RunAsync(WorkspaceConsole console, string line, TimeSpan timeout, Stopwatch clock, CancellationToken ct)
    {
        string nonce = NewNonce();
        var scanner = new Scanner(nonce);
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(ct);
        limit.CancelAfter(timeout - clock.Elapsed is { } left && left > TimeSpan.Zero ? left : TimeSpan.Zero);
        var buffer = new byte[16 * 1024];
        try
        {
            await console.WriteAsync(Encoding.UTF8.GetBytes(Preamble(nonce)), limit.Token).ConfigureAwait(false);
            bool sent = false;
            while (true)
            {
                int n = await console.Output.ReadAsync(buffer, limit.Token).ConfigureAwait(false);
                if (n == 0) break;
                scanner.Feed(buffer.AsSpan(0, n));
                if (scanner.Begun && !sent)
                {
                    sent = true;
                    await console.WriteAsync(Encoding.UTF8.GetBytes(Command(line, nonce)), limit.Token).ConfigureAwait(false);
                }
                if (scanner.Ended) return new ConsoleSendResult(scanner.Output, scanner.ExitCode, clock.ElapsedMilliseconds);
            }
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            string partial = scanner.Partial;
            throw new ConsoleTimeoutException(
                $"the line did not finish within {timeout.TotalSeconds:0.###} s on the console of '{console.Workspace}'" +
                (scanner.Begun ? $"; it had printed {Encoding.UTF8.GetByteCount(partial)} bytes" : "; the shell had not become ready"),
                partial, "give it longer (--timeout), or run a long command with `microagent exec`");
        }
        // The session ended before the end marker: the line exited the shell (or the session was severed, or the VM stopped).
        var end = await console.Completion.ConfigureAwait(false);
        if (end.ShellExited && scanner.Begun) return new ConsoleSendResult(scanner.Partial, end.ExitCode ?? 0, clock.ElapsedMilliseconds);
        throw MicroagentException.Transient($"the console session of '{console.Workspace}' closed before the line finished" +
            (end.ShellExited ? $" (the shell exited with {end.ExitCode})" : ""), "see `microagent status` for the workspace's state");
    }
}

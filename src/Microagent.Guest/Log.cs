using System.Text;

namespace Microagent.Guest;

/// <summary>
/// Diagnostics to the console (PID 1: /dev/console once /dev is mounted; otherwise stderr), every line
/// prefixed <c>microagent-agent:</c>. Never throws.
/// </summary>
internal static class Log
{
    private static readonly object Gate = new();
    private static Stream? _console;

    /// <summary>Sends further lines to <paramref name="path"/> (e.g. /dev/console); keeps stderr on failure.</summary>
    public static void UseConsole(string path)
    {
        try
        {
            var s = new FileStream(path, FileMode.Open, FileAccess.Write, FileShare.ReadWrite, 0);
            lock (Gate) _console = s;
        }
        catch (Exception) { }
    }

    /// <summary>Informational line.</summary>
    public static void Info(string message) => Write(message);

    /// <summary>Error line.</summary>
    public static void Error(string message) => Write("error: " + message);

    private static void Write(string message)
    {
        try
        {
            byte[] line = Encoding.UTF8.GetBytes($"microagent-agent: {message}\n");
            lock (Gate)
            {
                if (_console is not null) { _console.Write(line); _console.Flush(); }
                else { using Stream err = Console.OpenStandardError(); err.Write(line); }
            }
        }
        catch (Exception) { }
    }
}

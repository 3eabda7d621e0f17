namespace Microagent.Tests;

/// <summary>
/// Waits for a condition that no signal announces (state owned by another process: /proc, a file QEMU creates).
/// Fails the test, naming what was awaited, when the condition does not hold within the limit.
/// </summary>
internal static class Poll
{
    public static async Task UntilAsync(Func<bool> condition, TimeSpan limit, string what)
    {
        var until = DateTime.UtcNow + limit;
        while (!condition())
        {
            if (DateTime.UtcNow > until) Assert.Fail($"timed out after {limit.TotalSeconds:0.#} s waiting for {what}");
            await Task.Delay(20);
        }
    }
}

namespace Microagent.EndToEnd.Tests;

/// <summary>
/// Waits for a condition that no signal announces (state another process owns: /proc, a workspace's status).
/// Fails the test, naming what was awaited, when the condition does not hold within the limit.
/// </summary>
public static class Poll
{
    public static async Task UntilAsync(Func<Task<bool>> condition, TimeSpan limit, string what)
    {
        var until = DateTime.UtcNow + limit;
        while (!await condition())
        {
            if (DateTime.UtcNow > until) Assert.Fail($"timed out after {limit.TotalSeconds:0.#} s waiting for {what}");
            await Task.Delay(100);
        }
    }

    public static Task UntilAsync(Func<bool> condition, TimeSpan limit, string what) =>
        UntilAsync(() => Task.FromResult(condition()), limit, what);
}

using Microagent.Errors;
using Microagent.Tools;

namespace Microagent.Tests.Tools;

public sealed class DurationTests
{
    [Theory]
    [InlineData("30", 30_000)]
    [InlineData("1.5", 1_500)]
    [InlineData("0", 0)]
    [InlineData("300ms", 300)]
    [InlineData("30s", 30_000)]
    [InlineData("5m", 300_000)]
    [InlineData("1h", 3_600_000)]
    [InlineData(" 2M ", 120_000)]
    [InlineData("0.5s", 500)]
    public void AcceptsSecondsAndUnits(string text, long ms) => Assert.Equal(TimeSpan.FromMilliseconds(ms), Duration.Parse(text, "--timeout"));

    [Theory]
    [InlineData("", "it is empty")]
    [InlineData("abc", "expected a number")]
    [InlineData("5x", "expected a number")]
    [InlineData("ms", "expected a number")]
    [InlineData("-1s", "it is negative")]
    [InlineData("9999h", "longer than a year")]
    [InlineData("1e3", "expected a number")]
    public void RefusesWithAReasonInWords(string text, string why)
    {
        var e = Assert.Throws<MicroagentException>(() => Duration.Parse(text, "--timeout", "timeout_ms"));
        Assert.Equal(ErrorKind.Invalid, e.Kind);
        Assert.Equal("timeout_ms", e.Field);
        Assert.StartsWith($"--timeout: '{text}' is not a duration", e.Message);
        Assert.Contains(why, e.Message);
        Assert.DoesNotContain("System.", e.Message);
        Assert.Contains("300ms", e.Remediation);
    }

    [Theory]
    [InlineData(300, "300ms")]
    [InlineData(30_000, "30s")]
    [InlineData(90_000, "90s")]
    [InlineData(300_000, "5m")]
    [InlineData(5_400_000, "90m")]
    [InlineData(7_200_000, "2h")]
    public void FormatsWhatItParses(long ms, string text)
    {
        Assert.Equal(text, Duration.Format(TimeSpan.FromMilliseconds(ms)));
        Assert.Equal(TimeSpan.FromMilliseconds(ms), Duration.Parse(text, "x"));
    }
}

namespace Microagent.Models.Mediation;

/// <summary>The patterns of model policy matches: <c>*</c> any run of characters (including <c>/</c>), <c>?</c> one character, the rest literal.</summary>
internal static class Glob
{
    /// <summary>Whether <paramref name="value"/> matches <paramref name="pattern"/> (whole string; linear-time, no backtracking blow-up).</summary>
    public static bool Matches(string pattern, string value)
    {
        int p = 0, v = 0, star = -1, mark = 0;
        while (v < value.Length)
        {
            if (p < pattern.Length && (pattern[p] == '?' || pattern[p] == value[v])) { p++; v++; }
            else if (p < pattern.Length && pattern[p] == '*') { star = p++; mark = v; }
            else if (star >= 0) { p = star + 1; v = ++mark; }
            else return false;
        }
        while (p < pattern.Length && pattern[p] == '*') p++;
        return p == pattern.Length;
    }
}

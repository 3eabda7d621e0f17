namespace Microagent.Guest.Exec;

/// <summary>Resolved credentials for an exec <c>user</c> field (<c>name</c>, <c>uid</c> or <c>uid:gid</c>).</summary>
internal sealed record UserSpec(uint Uid, uint Gid, uint[] Groups, string? Home)
{
    /// <summary>
    /// Resolves <paramref name="user"/> against passwd/group files under <paramref name="etc"/>.
    /// Supplementary groups come from the group file only when a name was given.
    /// </summary>
    public static UserSpec Resolve(string user, string etc = "/etc")
    {
        string[] parts = user.Split(':');
        if (parts.Length > 2 || parts[0].Length == 0) throw new ExecStartException($"invalid user '{user}'");
        string[][] passwd = ReadDb(Path.Combine(etc, "passwd"));
        if (uint.TryParse(parts[0], out uint uid))
        {
            string[]? entry = passwd.FirstOrDefault(e => e.Length >= 6 && e[2] == parts[0]);
            uint gid;
            if (parts.Length == 2)
            {
                if (!uint.TryParse(parts[1], out gid)) gid = LookupGroup(etc, parts[1]);
            }
            else gid = entry is not null && uint.TryParse(entry[3], out uint g) ? g : uid;
            return new UserSpec(uid, gid, [], entry?[5]);
        }
        string[] pw = passwd.FirstOrDefault(e => e.Length >= 6 && e[0] == parts[0])
            ?? throw new ExecStartException($"user '{parts[0]}' not found in {etc}/passwd");
        if (!uint.TryParse(pw[2], out uint nuid) || !uint.TryParse(pw[3], out uint ngid))
            throw new ExecStartException($"malformed passwd entry for '{parts[0]}'");
        if (parts.Length == 2) ngid = uint.TryParse(parts[1], out uint eg) ? eg : LookupGroup(etc, parts[1]);
        var groups = new List<uint> { ngid };
        foreach (string[] g in ReadDb(Path.Combine(etc, "group")))
        {
            if (g.Length >= 4 && g[3].Split(',').Contains(parts[0]) && uint.TryParse(g[2], out uint id) && !groups.Contains(id))
                groups.Add(id);
        }
        return new UserSpec(nuid, ngid, groups.ToArray(), pw[5]);
    }

    private static uint LookupGroup(string etc, string name)
    {
        string[]? g = ReadDb(Path.Combine(etc, "group")).FirstOrDefault(e => e.Length >= 3 && e[0] == name);
        if (g is null || !uint.TryParse(g[2], out uint gid)) throw new ExecStartException($"group '{name}' not found in {etc}/group");
        return gid;
    }

    private static string[][] ReadDb(string path)
    {
        try
        {
            return File.ReadAllLines(path)
                .Where(l => l.Length > 0 && l[0] != '#')
                .Select(l => l.Split(':'))
                .ToArray();
        }
        catch (IOException) { return []; }
        catch (UnauthorizedAccessException) { return []; }
    }
}

/// <summary>The exec could not be started; becomes a <c>failed_to_start</c> result.</summary>
internal sealed class ExecStartException(string message, int exitCode = 126) : Exception(message)
{
    /// <summary>127 for not found, 126 otherwise.</summary>
    public int ExitCode { get; } = exitCode;
}

using System.CommandLine;
using Microagent.Registries;

namespace Microagent.Cli.Commands;

/// <summary><c>microagent registry login|logout|list</c>: credentials in &lt;state-dir&gt;/auth.json (0600).</summary>
internal static class RegistryCommand
{
    public static Command Create()
    {
        var cmd = new Command("registry", """
            Manage registry credentials. They are kept in <state-dir>/auth.json (mode 0600) and used for basic auth
            and bearer-token requests; they never appear in output, logs or errors.
            """);
        cmd.Subcommands.Add(Login());
        cmd.Subcommands.Add(Logout());
        cmd.Subcommands.Add(List());
        return cmd;
    }

    private static Command Login()
    {
        var registry = new Argument<string>("registry") { Description = "Registry host[:port] (docker.io for Docker Hub)" };
        var user = new Option<string>("--username", "-u") { Description = "User name", Required = true };
        var passwordStdin = new Option<bool>("--password-stdin") { Description = "Read the password (or token) from stdin" };
        var insecure = new Option<bool>("--insecure-registry") { Description = "Reach the registry over plain HTTP (loopback registries always are)" };
        var noVerify = new Option<bool>("--no-verify") { Description = "Store the credentials without checking them against the registry" };
        var cmd = new Command("login", """
            Store credentials for a registry after checking them against it (GET /v2/ with the token flow or basic auth).
            The password is read from stdin (--password-stdin) or, on a terminal, prompted for without echo.

            Examples:
              echo "$TOKEN" | microagent registry login ghcr.io -u me --password-stdin
              microagent registry login 127.0.0.1:5000 -u alice
            """);
        cmd.Arguments.Add(registry);
        foreach (var o in new Option[] { user, passwordStdin, insecure, noVerify }) cmd.Options.Add(o);
        cmd.SetAction(async (r, ct) =>
        {
            string host = AuthStore.Normalize(r.GetValue(registry)!);
            string secret = r.GetValue(passwordStdin) || !PasswordPrompt.Available
                ? (await Console.In.ReadToEndAsync(ct)).TrimEnd('\r', '\n')
                : PasswordPrompt.Read("Password: ", ct);
            if (secret.Length == 0) throw Errors.MicroagentException.Invalid("empty password", "pass it on stdin with --password-stdin");
            var cred = new RegistryCredential(r.GetValue(user)!, secret);
            var store = new AuthStore(GlobalOptions.Paths(r));
            if (!r.GetValue(noVerify))
            {
                using var client = new RegistryClient(null, new RegistryOptions(r.GetValue(insecure) ? [host] : null)) { CredentialOverride = cred };
                await client.PingAsync(host, ct);
            }
            store.Set(host, cred);
            if (r.GetValue(GlobalOptions.Json)) Cli.WriteJson(new RegistryLoginJson(host, cred.Username, store.FilePath), Cli.Json.RegistryLoginJson);
            else Console.WriteLine($"login succeeded: {cred.Username}@{host} (stored in {store.FilePath})");
            return 0;
        });
        return cmd;
    }

    private static Command Logout()
    {
        var registry = new Argument<string>("registry") { Description = "Registry host[:port]" };
        var cmd = new Command("logout", "Forget the credentials of a registry.\n\nExamples:\n  microagent registry logout ghcr.io");
        cmd.Arguments.Add(registry);
        cmd.SetAction(r =>
        {
            string host = AuthStore.Normalize(r.GetValue(registry)!);
            bool removed = new AuthStore(GlobalOptions.Paths(r)).Remove(host);
            if (r.GetValue(GlobalOptions.Json)) Cli.WriteJson(new RegistryLogoutJson(host, removed), Cli.Json.RegistryLogoutJson);
            else Console.WriteLine(removed ? $"removed credentials for {host}" : $"no credentials stored for {host}");
            return 0;
        });
        return cmd;
    }

    private static Command List()
    {
        var cmd = new Command("list", "List registries with stored credentials (user names only).\n\nExamples:\n  microagent registry ls\n  microagent registry list --json");
        cmd.Aliases.Add("ls");
        cmd.SetAction(r =>
        {
            var entries = new AuthStore(GlobalOptions.Paths(r)).List();
            if (r.GetValue(GlobalOptions.Json)) { Cli.WriteJson([.. entries.Select(e => new RegistryEntryJson(e.Registry, e.Username))], Cli.Json.ListRegistryEntryJson); return 0; }
            if (entries.Count == 0) Console.WriteLine("no stored credentials");
            foreach (var (reg, u) in entries) Console.WriteLine($"{reg,-40} {u}");
            return 0;
        });
        return cmd;
    }
}

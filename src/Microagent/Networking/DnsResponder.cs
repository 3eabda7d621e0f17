using System.Net;
using System.Net.Sockets;

namespace Microagent.Networking;

/// <summary>What the responder answered and why (one audit record).</summary>
/// <param name="Answer">The DNS answer message.</param>
/// <param name="Verdict">allowed or refused.</param>
/// <param name="Rule">The rule (<see cref="EgressPolicy"/>) or why the answer is an error.</param>
/// <param name="Name">The name asked for.</param>
/// <param name="Addresses">The real addresses answered (a stand-in's real address, not the stand-in).</param>
internal sealed record DnsOutcome(byte[] Answer, string Verdict, string Rule, string? Name, IReadOnlyList<IPAddress> Addresses);

/// <summary>
/// The broker's DNS (docs/ARCHITECTURE.md "Networking"): answers A from <c>--add-host</c> entries, else from the host's own
/// resolution when the policy allows the name; REFUSED when the allowlist is locked and the name is not on it; AAAA and other
/// types get an empty answer (only IPv4 is carried). Every address the host resolved is remembered by the policy, so an allowed
/// name reaches an inside address only through the host's own answer. With the test guard on, only <c>--add-host</c> entries
/// inside 127.0.0.0/8 are answered and the host resolver is never asked. A host-loopback address is answered as its stand-in
/// (<see cref="StandInAddresses"/>): the guest cannot route to the host's loopback.
/// </summary>
internal sealed class DnsResponder(EgressPolicy policy, Func<string, CancellationToken, Task<IPAddress[]>>? resolve = null, Action<string>? log = null)
{
    private readonly Func<string, CancellationToken, Task<IPAddress[]>> _resolve = resolve ?? ((n, ct) => Dns.GetHostAddressesAsync(n, AddressFamily.InterNetwork, ct));

    /// <summary>Answers one query message.</summary>
    public async Task<DnsOutcome> AnswerAsync(byte[] message, CancellationToken ct)
    {
        DnsQuery q;
        try { q = DnsWire.ParseQuery(message); }
        catch (DnsFormatException e)
        {
            return new DnsOutcome(e.Id is { } id ? DnsWire.BuildFormatError(id) : [], "refused", $"formerr: {e.Message}", null, []);
        }
        if (DnsWire.Opcode(q.Flags) != 0 || q.Class != DnsWire.ClassIn)
            return new(DnsWire.BuildAnswer(q, DnsWire.NotImp, []), "refused", "notimp", q.Name, []);
        if (DnsName.Normalize(q.Name) is not { } name)
            return new(DnsWire.BuildAnswer(q, DnsWire.NxDomain, []), "refused", "bad-name", q.Name, []);

        var decision = policy.DecideName(name);
        if (!decision.Allowed) return new(DnsWire.BuildAnswer(q, DnsWire.Refused, []), "refused", decision.Rule, name, []);
        if (q.Type != DnsWire.TypeA) return new(DnsWire.BuildAnswer(q, DnsWire.NoError, []), "allowed", decision.Rule + " (no records of this type)", name, []);

        if (policy.StaticAnswer(name) is { } fixedIp)
        {
            if (policy.LoopbackOnly && !LoopbackGuard.IsLoopbackV4(fixedIp))
                return Guarded(q, name, $"--add-host {name} points outside 127.0.0.0/8 ({fixedIp})");
            return Answer(q, name, decision.Rule + " via add-host", [fixedIp]);
        }
        if (policy.LoopbackOnly) return Guarded(q, name, $"'{name}' is not an --add-host entry and the host resolver may not be asked");

        IPAddress[] found;
        try { found = await _resolve(name, ct).ConfigureAwait(false); }
        catch (SocketException e) when (e.SocketErrorCode is SocketError.HostNotFound or SocketError.NoData)
        {
            return new(DnsWire.BuildAnswer(q, DnsWire.NxDomain, []), "allowed", decision.Rule + " (no such name)", name, []);
        }
        catch (SocketException e)
        {
            return new(DnsWire.BuildAnswer(q, DnsWire.ServFail, []), "refused", $"resolver: {e.SocketErrorCode}", name, []);
        }
        var v4 = found.Select(AddressClass.Unwrap).Where(a => a.AddressFamily == AddressFamily.InterNetwork).Distinct().ToList();
        foreach (var a in v4) policy.RecordResolution(name, a);
        return Answer(q, name, decision.Rule + " via host resolver", v4);
    }

    /// <summary>Answers <paramref name="real"/>, each host-loopback address as its stand-in (the rule names them).</summary>
    private DnsOutcome Answer(DnsQuery q, string name, string rule, IReadOnlyList<IPAddress> real)
    {
        var guest = new List<IPAddress>(real.Count);
        foreach (var a in real)
        {
            if (policy.GuestAnswer(name, a) is not { } g)
                return new(DnsWire.BuildAnswer(q, DnsWire.ServFail, []), "refused", $"stand-ins exhausted ({StandInAddresses.Capacity})", name, real);
            if (!g.Equals(a)) rule += $", {a} as stand-in {g}";
            guest.Add(g);
        }
        return new(DnsWire.BuildAnswer(q, DnsWire.NoError, guest), "allowed", rule, name, real);
    }

    private DnsOutcome Guarded(DnsQuery q, string name, string why)
    {
        log?.Invoke($"ERROR: {LoopbackGuard.Variable}=1 refused a DNS answer: {why}");
        return new(DnsWire.BuildAnswer(q, DnsWire.Refused, []), "refused", "test-guard", name, []);
    }
}

using Microagent.Guest.Network;

namespace Microagent.Tests.Guest.Network;

/// <summary>The stub's one piece of DNS knowledge: turning a query into SERVFAIL (RFC 1035 §4.1.1).</summary>
public sealed class DnsStubTests
{
    [Fact]
    public void Servfail_keeps_id_and_question_and_sets_qr_and_rcode()
    {
        byte[] query = Convert.FromHexString("abcd0100000100000000000003777777076578616d706c6503636f6d0000010001");
        byte[] r = DnsStub.ServFail(query);
        Assert.Equal(query.Length, r.Length);
        Assert.Equal(new byte[] { 0xab, 0xcd, 0x81, 0x02 }, r[..4]); // same id; QR | RD; RCODE 2
        Assert.Equal(query[4..], r[4..]);
        Assert.Equal(0x01, query[2]); // the query itself is untouched
    }
}

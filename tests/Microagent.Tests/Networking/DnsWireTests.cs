using System.Net;
using Microagent.Networking;

namespace Microagent.Tests.Networking;

public sealed class DnsWireTests
{
    // dig-style query for example.com A with RD set (RFC 1035 §4.1): id 0xabcd, flags 0x0100, QDCOUNT 1.
    private static readonly byte[] ExampleQuery =
    [
        0xab, 0xcd, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        7, (byte)'e', (byte)'x', (byte)'a', (byte)'m', (byte)'p', (byte)'l', (byte)'e', 3, (byte)'c', (byte)'o', (byte)'m', 0,
        0x00, 0x01, 0x00, 0x01,
    ];

    [Fact]
    public void A_query_parses_to_its_question()
    {
        var q = DnsWire.ParseQuery(ExampleQuery);
        Assert.Equal((0xabcd, "example.com", DnsWire.TypeA, DnsWire.ClassIn), (q.Id, q.Name, q.Type, q.Class));
        Assert.Equal(ExampleQuery, DnsWire.BuildQuery(0xabcd, "example.com", DnsWire.TypeA));
    }

    [Fact]
    public void An_answer_echoes_the_question_and_carries_a_records()
    {
        var q = DnsWire.ParseQuery(DnsWire.BuildQuery(7, "Allowed.Test", DnsWire.TypeA));
        byte[] a = DnsWire.BuildAnswer(q, DnsWire.NoError, [IPAddress.Parse("127.0.0.2"), IPAddress.Parse("::1")]);
        Assert.Equal(0x8180, (a[2] << 8) | a[3]); // QR, RD, RA; RCODE 0
        Assert.Equal(q.QuestionBytes, a[12..(12 + q.QuestionBytes.Length)]);
        var (rcode, addresses) = DnsWire.ParseAnswer(a);
        Assert.Equal(0, rcode);
        Assert.Equal([IPAddress.Parse("127.0.0.2")], addresses);
        int rr = 12 + q.QuestionBytes.Length;
        Assert.Equal(new byte[] { 0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 2 }, a[rr..]);
    }

    [Fact]
    public void Refused_has_no_answers()
    {
        var q = DnsWire.ParseQuery(ExampleQuery);
        var (rcode, addresses) = DnsWire.ParseAnswer(DnsWire.BuildAnswer(q, DnsWire.Refused, []));
        Assert.Equal((DnsWire.Refused, 0), (rcode, addresses.Count));
    }

    [Fact]
    public void Malformed_queries_are_format_errors()
    {
        Assert.Null(Assert.Throws<DnsFormatException>(() => DnsWire.ParseQuery(ExampleQuery[..5])).Id);
        var pointer = (byte[])ExampleQuery.Clone();
        pointer[12] = 0xc0;
        Assert.Equal((ushort)0xabcd, Assert.Throws<DnsFormatException>(() => DnsWire.ParseQuery(pointer)).Id);
        var response = (byte[])ExampleQuery.Clone();
        response[2] |= 0x80;
        Assert.Throws<DnsFormatException>(() => DnsWire.ParseQuery(response));
        var two = (byte[])ExampleQuery.Clone();
        two[5] = 2;
        Assert.Throws<DnsFormatException>(() => DnsWire.ParseQuery(two));
        Assert.Throws<DnsFormatException>(() => DnsWire.ParseQuery(ExampleQuery[..^2]));
        var overrun = (byte[])ExampleQuery.Clone();
        overrun[12] = 60;
        Assert.Throws<DnsFormatException>(() => DnsWire.ParseQuery(overrun));
        Assert.Throws<DnsFormatException>(() => DnsWire.ParseQuery(new byte[600]));
        Assert.Equal(new byte[] { 0xab, 0xcd, 0x80, 0x81, 0, 0, 0, 0, 0, 0, 0, 0 }, DnsWire.BuildFormatError(0xabcd));
    }

    [Fact]
    public void Random_bytes_never_throw_anything_but_a_format_error()
    {
        var rng = new Random(1035);
        for (int i = 0; i < 5000; i++)
        {
            var m = new byte[rng.Next(0, 80)];
            rng.NextBytes(m);
            if (m.Length > 5) { m[4] = 0; m[5] = 1; m[2] &= 0x7f; }
            try { DnsWire.ParseQuery(m); }
            catch (DnsFormatException) { }
        }
    }
}

using System.Net;
using Microagent.Interop;

namespace Microagent.Tests.Interop;

/// <summary>struct sockaddr_in as SO_ORIGINAL_DST returns it.</summary>
public sealed class OriginalDestinationTests
{
    [Fact]
    public void Parses_family_port_and_address()
    {
        byte[] sa = Convert.FromHexString("0200" + "1f90" + "cb007107" + "0000000000000000"); // AF_INET, 8080, 203.0.113.7
        Assert.Equal(new IPEndPoint(IPAddress.Parse("203.0.113.7"), 8080), OriginalDestination.Parse(sa));
    }

    [Fact]
    public void Other_families_and_short_buffers_are_null()
    {
        Assert.Null(OriginalDestination.Parse(Convert.FromHexString("0a001f90cb007107")));
        Assert.Null(OriginalDestination.Parse(Convert.FromHexString("0200")));
    }
}

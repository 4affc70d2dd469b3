using System.Net;
using FsCheck;
using FsCheck.Xunit;
using KeyShell.Engine.Security;
using KeyShell.Engine.Server;

namespace KeyShell.Engine.Tests;

public class AddressRulesTests
{
    private static AddressRules Rules(params string[] rules) => AddressRules.Parse(rules);

    [Theory]
    [InlineData("10.0.0.0/8", "10.0.0.0/8")]
    [InlineData(" 10.0.0.0/8 ", "10.0.0.0/8")]
    [InlineData("127.0.0.1", "127.0.0.1/32")]
    [InlineData("0.0.0.0/0", "0.0.0.0/0")]
    [InlineData("255.255.255.255/32", "255.255.255.255/32")]
    [InlineData("192.168.1.128/25", "192.168.1.128/25")]
    [InlineData("fd00::/8", "fd00::/8")]
    [InlineData("FD00::/8", "fd00::/8")]
    [InlineData("::1", "::1/128")]
    [InlineData("[::1]", "::1/128")]
    [InlineData("[2001:db8::]/32", "2001:db8::/32")]
    [InlineData("::/0", "::/0")]
    [InlineData("2001:db8::8000:0:0:0/65", "2001:db8:0:0:8000::/65")]
    [InlineData("::ffff:10.0.0.0/104", "10.0.0.0/8")]
    [InlineData("::ffff:127.0.0.1", "127.0.0.1/32")]
    [InlineData("::ffff:0.0.0.0/96", "0.0.0.0/0")]
    public void ReadsRulesAsUsersWriteThem(string text, string canonical)
    {
        var rule = AddressRule.Parse(text);
        Assert.Equal(canonical, rule.ToString());
        Assert.Equal(text.Trim(), rule.Text);
    }

    [Theory]
    [InlineData("", "empty")]
    [InlineData("   ", "empty")]
    [InlineData("/8", "address before '/' is missing")]
    [InlineData("10.0.0.0/", "prefix length after '/' is missing")]
    [InlineData("10.0.0.0/8/8", "more than one '/'")]
    [InlineData("10.0.0.0/33", "/33 is out of range: an IPv4 prefix is 0 to 32")]
    [InlineData("fd00::/129", "/129 is out of range: an IPv6 prefix is 0 to 128")]
    [InlineData("10.0.0.0/-1", "'-1' is not a number 0 to 32")]
    [InlineData("10.0.0.0/eight", "'eight' is not a number 0 to 32")]
    [InlineData("10.0.0.0/0008", "'0008' is not a number")]
    [InlineData("10.0/8", "four numbers")]
    [InlineData("10", "four numbers")]
    [InlineData("10.0.0.0.0/8", "four numbers")]
    [InlineData("256.0.0.0/8", "256 is over 255")]
    [InlineData("010.0.0.1", "leading zero in '010'")]
    [InlineData("10.0.0.x", "'x' is not a number 0 to 255")]
    [InlineData("0x0a.0.0.0/8", "'0x0a' is not a number")]
    [InlineData("localhost", "not an IPv4 address")]
    [InlineData("fd00:::/8", "'fd00:::' is not an IPv6 address")]
    [InlineData("fe80::1%eth0", "zone index")]
    [InlineData("fe80::%2/10", "zone index")]
    [InlineData("10.1.2.3/8", "bits set past the /8 prefix; the network is 10.0.0.0/8, and one address is written 10.1.2.3/32")]
    [InlineData("10.0.0.1/31", "the network is 10.0.0.0/31")]
    [InlineData("0.0.0.1/0", "the network is 0.0.0.0/0")]
    [InlineData("fd00::1/8", "the network is fd00::/8, and one address is written fd00::1/128")]
    [InlineData("2001:db8::1/64", "the network is 2001:db8::/64")]
    [InlineData("::1/0", "the network is ::/0")]
    [InlineData("::ffff:10.1.0.0/104", "the network is 10.0.0.0/8")]
    public void RejectsABadRuleSayingWhichAndWhy(string text, string why)
    {
        var error = Assert.Throws<KeyServerException>(() => AddressRules.Parse(new[] { "127.0.0.1", text }));
        Assert.Equal(KeyServerErrorKind.InvalidAddressRule, error.Kind);
        Assert.Equal(text, error.Target);
        Assert.Contains($"'{text}'", error.Message);
        Assert.Contains(why, error.Message);
        Assert.False(AddressRule.TryParse(text, out var rule, out var reason));
        Assert.Null(rule);
        Assert.Contains(why, reason);
    }

    [Fact]
    public void RejectsNoRulesAtAll()
    {
        var error = Assert.Throws<KeyServerException>(() => AddressRules.Parse(Array.Empty<string>()));
        Assert.Equal(KeyServerErrorKind.InvalidAddressRule, error.Kind);
        Assert.Contains("No address rule", error.Message);
    }

    [Theory]
    [InlineData("10.0.0.0/8", "10.0.0.0", true)]
    [InlineData("10.0.0.0/8", "10.255.255.255", true)]
    [InlineData("10.0.0.0/8", "11.0.0.0", false)]
    [InlineData("10.0.0.0/8", "9.255.255.255", false)]
    [InlineData("127.0.0.0/8", "127.0.0.1", true)]
    [InlineData("127.0.0.1", "127.0.0.1", true)]
    [InlineData("127.0.0.1", "127.0.0.2", false)]
    [InlineData("0.0.0.0/0", "203.0.113.9", true)]
    [InlineData("128.0.0.0/1", "127.255.255.255", false)]
    [InlineData("128.0.0.0/1", "128.0.0.0", true)]
    [InlineData("192.168.1.128/25", "192.168.1.127", false)]
    [InlineData("192.168.1.128/25", "192.168.1.200", true)]
    [InlineData("10.0.0.0/31", "10.0.0.1", true)]
    [InlineData("10.0.0.0/31", "10.0.0.2", false)]
    [InlineData("fd00::/8", "fd12:3456::1", true)]
    [InlineData("fd00::/8", "fe00::1", false)]
    [InlineData("::1", "::1", true)]
    [InlineData("::1", "::2", false)]
    [InlineData("::/0", "2001:db8::1", true)]
    [InlineData("2001:db8::/64", "2001:db8::ffff:ffff:ffff:ffff", true)]
    [InlineData("2001:db8::/64", "2001:db8:0:1::", false)]
    [InlineData("2001:db8::8000:0:0:0/65", "2001:db8::8000:0:0:1", true)]
    [InlineData("2001:db8::8000:0:0:0/65", "2001:db8::7fff:0:0:1", false)]
    [InlineData("2001:db8::/63", "2001:db8:0:1::1", true)]
    [InlineData("2001:db8::/63", "2001:db8:0:2::1", false)]
    [InlineData("2001:db8::1/128", "2001:db8::1", true)]
    public void AllowsExactlyTheAddressesInsideARule(string rule, string peer, bool allowed)
    {
        Assert.Equal(allowed, Rules(rule).Allows(IPAddress.Parse(peer)));
    }

    [Theory]
    [InlineData("::ffff:10.1.2.3", true)]
    [InlineData("::ffff:11.1.2.3", false)]
    [InlineData("10.1.2.3", true)]
    public void AnIPv4PeerOnADualStackSocketIsMatchedAsIPv4(string peer, bool allowed)
    {
        var rules = Rules("10.0.0.0/8");
        Assert.Equal(allowed, rules.Allows(IPAddress.Parse(peer)));
        Assert.Equal(allowed, rules.Allows(IPAddress.Parse(peer).MapToIPv6()));
    }

    [Fact]
    public void AMappedRuleIsAnIPv4RuleForBothFormsOfThePeer()
    {
        var rules = Rules("::ffff:10.0.0.0/104");
        Assert.True(rules.Allows(IPAddress.Parse("10.9.9.9")));
        Assert.True(rules.Allows(IPAddress.Parse("::ffff:10.9.9.9")));
        Assert.False(rules.Allows(IPAddress.Parse("11.0.0.1")));
    }

    [Fact]
    public void IPv6RulesDoNotAdmitIPv4PeersNorTheOtherWayRound()
    {
        Assert.False(Rules("::/0").Allows(IPAddress.Parse("127.0.0.1")));
        Assert.False(Rules("::/0").Allows(IPAddress.Parse("::ffff:127.0.0.1")));
        Assert.False(Rules("0.0.0.0/0").Allows(IPAddress.IPv6Loopback));

        // ::a.b.c.d (IPv4-compatible, deprecated) is an IPv6 address, not a mapped one.
        Assert.False(Rules("10.0.0.0/8").Allows(IPAddress.Parse("::10.0.0.1")));
        Assert.True(Rules("::/96").Allows(IPAddress.Parse("::10.0.0.1")));
    }

    [Fact]
    public void APeersZoneIndexIsIgnored()
    {
        var peer = IPAddress.Parse("fe80::1%2");
        Assert.Equal(2, peer.ScopeId);
        Assert.True(Rules("fe80::/10").Allows(peer));
        Assert.True(Rules("fe80::1").Allows(peer));
        Assert.False(Rules("fd00::/8").Allows(peer));
    }

    [Fact]
    public void AnyRuleOfSeveralAdmits()
    {
        var rules = Rules("10.0.0.0/8", "fd00::/8", "127.0.0.1");
        Assert.True(rules.Allows(IPAddress.Parse("10.2.3.4")));
        Assert.True(rules.Allows(IPAddress.Parse("fd00::5")));
        Assert.True(rules.Allows(IPAddress.Loopback));
        Assert.False(rules.Allows(IPAddress.Parse("127.0.0.2")));
        Assert.False(rules.Allows(IPAddress.IPv6Loopback));
        Assert.Equal("10.0.0.0/8, fd00::/8, 127.0.0.1/32", rules.ToString());
        Assert.Equal(new[] { "10.0.0.0/8", "fd00::/8", "127.0.0.1" }, rules.Rules.Select(r => r.Text));
    }

    [Fact]
    public void ReadsSockaddrBytesAndRefusesAnyOtherLength()
    {
        var rules = Rules("10.0.0.0/8", "fd00::/8");
        Assert.True(rules.Allows(new byte[] { 10, 1, 2, 3 }));
        Assert.True(rules.Allows(IPAddress.Parse("::ffff:10.1.2.3").GetAddressBytes()));
        Assert.True(rules.Allows(IPAddress.Parse("fd00::1").GetAddressBytes()));
        Assert.False(rules.Allows(ReadOnlySpan<byte>.Empty));
        Assert.False(rules.Allows(new byte[] { 10, 1, 2 }));
        Assert.False(rules.Allows(new byte[8]));
    }

    [Net8EngineFact("the allocation-free match uses .NET 5+'s span APIs for IP addresses")]
    public void CheckingAPeerAllocatesNothing()
    {
        var rules = Rules("192.168.0.0/16", "10.0.0.0/8", "fd00::/8", "2001:db8::/32");
        var peers = new[] { IPAddress.Parse("10.1.2.3"), IPAddress.Parse("::ffff:10.1.2.3"), IPAddress.Parse("fd00::1"), IPAddress.Parse("203.0.113.1"), IPAddress.Parse("fe80::1%3") };
        foreach (var peer in peers)
        {
            rules.Allows(peer); // JIT first
        }

        // The runtime's tiered compiler may allocate on this thread once, as it recompiles the hot loop: the
        // fewest bytes of several rounds is what checking peers costs.
        var fewest = long.MaxValue;
        for (var round = 0; round < 5; round++)
        {
            var allowed = 0;
            var before = GC.GetAllocatedBytesForCurrentThread();
            for (var i = 0; i < 10_000; i++)
            {
                allowed += rules.Allows(peers[i % peers.Length]) ? 1 : 0;
            }

            fewest = Math.Min(fewest, GC.GetAllocatedBytesForCurrentThread() - before);
            Assert.Equal(6_000, allowed);
        }

        Assert.Equal(0, fewest);
    }

    /// <summary>Against a reference that compares the first <c>prefix</c> bits one by one.</summary>
    [Property(MaxTest = 500)]
    public bool AnIPv4RuleAllowsExactlyTheAddressesThatShareItsPrefixBits(uint network, uint peer, byte prefixSeed)
    {
        var prefix = prefixSeed % 33;
        var masked = prefix == 0 ? 0 : network & (uint.MaxValue << (32 - prefix));
        var rules = Rules($"{new IPAddress(BigEndian(masked))}/{prefix}");
        var expected = SameLeadingBits(BigEndian(masked), BigEndian(peer), prefix);
        return rules.Allows(new IPAddress(BigEndian(peer))) == expected && rules.Allows(new IPAddress(BigEndian(masked)));
    }

    [Property(MaxTest = 500)]
    public bool AnIPv6RuleAllowsExactlyTheAddressesThatShareItsPrefixBits(Guid networkSeed, Guid peerSeed, byte prefixSeed, bool nearby)
    {
        var prefix = prefixSeed % 129;
        var network = networkSeed.ToByteArray();
        network[0] = 0x20; // keep clear of ::ffff:0:0/96, which is IPv4's
        for (var bit = prefix; bit < 128; bit++)
        {
            network[bit / 8] &= (byte)~(0x80 >> (bit % 8));
        }

        // Half the peers differ from the network only past bit prefix-2, so the boundary is exercised.
        var peer = peerSeed.ToByteArray();
        if (nearby)
        {
            var keep = Math.Max(0, prefix - 2);
            for (var bit = 0; bit < keep; bit++)
            {
                var mask = (byte)(0x80 >> (bit % 8));
                peer[bit / 8] = (byte)((peer[bit / 8] & ~mask) | (network[bit / 8] & mask));
            }
        }

        peer[0] = (byte)(peer[0] == 0 ? 0x20 : peer[0]);
        var rules = Rules($"{new IPAddress(network)}/{prefix}");
        var expected = SameLeadingBits(network, peer, prefix);
        return rules.Allows(new IPAddress(peer)) == expected && rules.Allows(new IPAddress(network));
    }

    private static byte[] BigEndian(uint value) => new[] { (byte)(value >> 24), (byte)(value >> 16), (byte)(value >> 8), (byte)value };

    private static bool SameLeadingBits(byte[] a, byte[] b, int bits)
    {
        for (var bit = 0; bit < bits; bit++)
        {
            var mask = 0x80 >> (bit % 8);
            if ((a[bit / 8] & mask) != (b[bit / 8] & mask))
            {
                return false;
            }
        }

        return true;
    }
}

using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.Linq;
using System.Net;
using System.Net.Sockets;
using KeyShell.Engine.Server;

namespace KeyShell.Engine.Security;

/// <summary>
/// The peers a server serves (Start-KeyServer -AllowedAddress): a peer is allowed when one rule contains
/// its address. IPv4 peers, including those a dual-stack socket shows as <c>::ffff:a.b.c.d</c>, are
/// matched against the IPv4 rules; other IPv6 peers against the IPv6 rules (so <c>::/0</c> does not admit
/// IPv4 peers, and <c>0.0.0.0/0</c> does not admit IPv6 ones). A peer's IPv6 zone index is ignored.
/// Checked once per accepted connection: <see cref="Allows(IPAddress)"/> allocates nothing on .NET 8
/// (AddressRules.NetCore.cs; AddressRules.NetStandard.cs copies the address's bytes from an array).
/// </summary>
public sealed partial class AddressRules
{
    private readonly AddressRule[] _ipv4;
    private readonly AddressRule[] _ipv6;

    private AddressRules(AddressRule[] rules)
    {
        Rules = rules;
        _ipv4 = rules.Where(r => r.Family == AddressFamily.InterNetwork).ToArray();
        _ipv6 = rules.Where(r => r.Family == AddressFamily.InterNetworkV6).ToArray();
    }

    /// <summary>The rules, in the order given.</summary>
    public IReadOnlyList<AddressRule> Rules { get; }

    /// <summary>
    /// Reads rules as users write them. Throws <see cref="KeyServerException"/> (InvalidAddressRule) for the
    /// first bad rule, naming it (its Target) and saying why; or when there is no rule at all.
    /// </summary>
    public static AddressRules Parse(IEnumerable<string> rules)
    {
        if (rules is null)
        {
            throw new ArgumentNullException(nameof(rules));
        }

        var parsed = rules.Select(AddressRule.Parse).ToArray();
        if (parsed.Length == 0)
        {
            throw new KeyServerException(KeyServerErrorKind.InvalidAddressRule, "No address rule was given: with none, no peer could connect.", null);
        }

        return new AddressRules(parsed);
    }

    /// <summary>Whether a peer with this address is served.</summary>
    public bool Allows(IPAddress address)
    {
        if (address is null)
        {
            throw new ArgumentNullException(nameof(address));
        }

        Span<byte> bytes = stackalloc byte[16];
        return TryWriteBytes(address, bytes, out var written) && Allows(bytes.Slice(0, written));
    }

    /// <summary>
    /// Whether a peer is served, from its address bytes in network order (4 for IPv4, 16 for IPv6), as a
    /// sockaddr carries them. Any other length is not allowed.
    /// </summary>
    public bool Allows(ReadOnlySpan<byte> address)
    {
        if (address.Length == 4)
        {
            return AllowsIPv4(BinaryPrimitives.ReadUInt32BigEndian(address));
        }

        if (address.Length != 16)
        {
            return false;
        }

        var high = BinaryPrimitives.ReadUInt64BigEndian(address);
        var low = BinaryPrimitives.ReadUInt64BigEndian(address.Slice(8));
        if (high == 0 && (low >> 32) == 0xFFFF)
        {
            return AllowsIPv4((uint)low); // ::ffff:a.b.c.d is an IPv4 peer on a dual-stack socket
        }

        foreach (var rule in _ipv6)
        {
            if (rule.Matches(high, low))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>The canonical rules, comma-separated: <c>10.0.0.0/8, fd00::/8</c>.</summary>
    public override string ToString() => string.Join(", ", Rules.Select(r => r.ToString()));

    private bool AllowsIPv4(uint address)
    {
        foreach (var rule in _ipv4)
        {
            if (rule.Matches(0, address))
            {
                return true;
            }
        }

        return false;
    }
}

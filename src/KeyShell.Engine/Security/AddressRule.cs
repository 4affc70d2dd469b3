using System;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using KeyShell.Engine.Server;

namespace KeyShell.Engine.Security;

/// <summary>
/// One address rule: an IPv4 or IPv6 network in CIDR form (<c>10.0.0.0/8</c>, <c>fd00::/8</c>), or a single
/// address (<c>127.0.0.1</c> is <c>127.0.0.1/32</c>, <c>::1</c> is <c>::1/128</c>). Rules written in the
/// IPv4-mapped IPv6 range (<c>::ffff:10.0.0.0/104</c>) are IPv4 rules (<c>10.0.0.0/8</c>), since that is
/// how an IPv4 peer reaches a dual-stack socket.
/// </summary>
public sealed class AddressRule
{
    private AddressRule(string text, AddressFamily family, ulong high, ulong low, int prefixLength)
    {
        Text = text;
        Family = family;
        High = high;
        Low = low;
        PrefixLength = prefixLength;
        var bits = family == AddressFamily.InterNetwork ? 32 : 128;
        MaskHigh = Mask(prefixLength, 0, bits);
        MaskLow = Mask(prefixLength, 64, bits);
    }

    /// <summary>The rule as the user wrote it (trimmed).</summary>
    public string Text { get; }

    /// <summary>InterNetwork for IPv4 rules (mapped ones included), InterNetworkV6 otherwise.</summary>
    public AddressFamily Family { get; }

    /// <summary>0 to 32 for IPv4, 0 to 128 for IPv6.</summary>
    public int PrefixLength { get; }

    /// <summary>The network's first address.</summary>
    public IPAddress Network => Family == AddressFamily.InterNetwork
        ? new IPAddress(new[] { (byte)(Low >> 24), (byte)(Low >> 16), (byte)(Low >> 8), (byte)Low })
        : new IPAddress(ToBytes(High, Low));

    // IPv4: the address in the low 32 bits of Low (High is 0). IPv6: the 128 bits, big-endian halves.
    internal ulong High { get; }

    internal ulong Low { get; }

    internal ulong MaskHigh { get; }

    internal ulong MaskLow { get; }

    /// <summary>The canonical form: <c>10.0.0.0/8</c>, <c>fd00::/8</c>.</summary>
    public override string ToString() => $"{Network}/{PrefixLength}";

    /// <summary>Reads one rule; on failure <paramref name="error"/> says why, in words a user can act on.</summary>
    public static bool TryParse(string? text, out AddressRule? rule, out string? error)
    {
        rule = null;
        error = Read(text?.Trim() ?? string.Empty, out rule);
        return error is null;
    }

    /// <summary>Reads one rule; throws <see cref="KeyServerException"/> (InvalidAddressRule) naming the rule and why.</summary>
    public static AddressRule Parse(string? text)
    {
        if (TryParse(text, out var rule, out var error))
        {
            return rule!;
        }

        throw new KeyServerException(
            KeyServerErrorKind.InvalidAddressRule,
            $"The address rule '{text}' is not valid: {error}. A rule is an IPv4 or IPv6 address, alone or with a prefix length: 10.0.0.0/8, fd00::/8, 127.0.0.1, ::1.",
            text);
    }

    internal bool Matches(ulong high, ulong low) => (high & MaskHigh) == High && (low & MaskLow) == Low;

    private static string? Read(string text, out AddressRule? rule)
    {
        rule = null;
        if (text.Length == 0)
        {
            return "the rule is empty";
        }

        var slash = text.IndexOf('/');
        if (slash >= 0 && text.IndexOf('/', slash + 1) >= 0)
        {
            return "it has more than one '/'";
        }

        var address = slash >= 0 ? text.Substring(0, slash).Trim() : text;
        if (address.Length == 0)
        {
            return "the address before '/' is missing";
        }

        if (address.IndexOf('%') >= 0)
        {
            // A zone index names a link on this machine, not part of an address: fe80::1%eth0 and
            // fe80::1%eth1 are the same bits, and a rule could not tell them apart.
            return "a zone index (%...) has no place in a rule; write the address without it (fe80::/10)";
        }

        AddressFamily family;
        ulong high, low;
        if (address.IndexOf(':') >= 0)
        {
            if (address.Length > 2 && address[0] == '[' && address[address.Length - 1] == ']')
            {
                address = address.Substring(1, address.Length - 2);
            }

            if (!IPAddress.TryParse(address, out var ip) || ip.AddressFamily != AddressFamily.InterNetworkV6)
            {
                return $"'{address}' is not an IPv6 address";
            }

            family = AddressFamily.InterNetworkV6;
            var bytes = ip.GetAddressBytes();
            high = ReadUInt64(bytes, 0);
            low = ReadUInt64(bytes, 8);
        }
        else
        {
            var ipv4Error = ReadIPv4(address, out var value);
            if (ipv4Error is not null)
            {
                return ipv4Error;
            }

            family = AddressFamily.InterNetwork;
            high = 0;
            low = value;
        }

        var bits = family == AddressFamily.InterNetwork ? 32 : 128;
        var prefix = bits;
        if (slash >= 0)
        {
            var prefixError = ReadPrefix(text.Substring(slash + 1).Trim(), bits, family, out prefix);
            if (prefixError is not null)
            {
                return prefixError;
            }
        }

        if (family == AddressFamily.InterNetworkV6 && prefix >= 96 && high == 0 && (low >> 32) == 0xFFFF)
        {
            // ::ffff:a.b.c.d/n: an IPv4 peer seen through a dual-stack socket; keep it as the IPv4 rule it means.
            family = AddressFamily.InterNetwork;
            low &= 0xFFFF_FFFF;
            prefix -= 96;
            bits = 32;
        }

        var candidate = new AddressRule(text, family, high, low, prefix);
        if ((high & ~candidate.MaskHigh) != 0 || (low & ~candidate.MaskLow) != 0)
        {
            // A typo as often as not (10.1.2.3/8 for 10.1.2.3/32?): allowing all of 10.0.0.0/8 silently
            // would open far more than the user may have meant.
            var network = new AddressRule(text, family, high & candidate.MaskHigh, low & candidate.MaskLow, prefix);
            var single = $"{new AddressRule(text, family, high, low, bits).Network}/{bits}";
            return $"it has bits set past the /{prefix} prefix; the network is {network}, and one address is written {single}";
        }

        rule = candidate;
        return null;
    }

    /// <summary>Strict dotted-quad IPv4: four decimal parts 0 to 255, no leading zeros (which some tools read as octal).</summary>
    private static string? ReadIPv4(string address, out uint value)
    {
        value = 0;
        var parts = address.Split('.');
        if (parts.Length != 4)
        {
            return $"'{address}' is not an IPv4 address (four numbers 0 to 255, a.b.c.d) nor an IPv6 address";
        }

        foreach (var part in parts)
        {
            if (part.Length == 0 || part.Length > 3 || !IsDigits(part))
            {
                return $"'{address}' is not an IPv4 address: '{part}' is not a number 0 to 255";
            }

            if (part.Length > 1 && part[0] == '0')
            {
                return $"'{address}' has a leading zero in '{part}', which some tools read as octal; write it without";
            }

            var number = int.Parse(part, NumberStyles.None, CultureInfo.InvariantCulture);
            if (number > 255)
            {
                return $"'{address}' is not an IPv4 address: {number} is over 255";
            }

            value = (value << 8) | (uint)number;
        }

        return null;
    }

    private static string? ReadPrefix(string text, int bits, AddressFamily family, out int prefix)
    {
        prefix = 0;
        var name = family == AddressFamily.InterNetwork ? "IPv4" : "IPv6";
        if (text.Length == 0)
        {
            return "the prefix length after '/' is missing";
        }

        if (text.Length > 3 || !IsDigits(text))
        {
            return $"the prefix length '{text}' is not a number 0 to {bits}";
        }

        prefix = int.Parse(text, NumberStyles.None, CultureInfo.InvariantCulture);
        return prefix > bits ? $"the prefix length /{prefix} is out of range: an {name} prefix is 0 to {bits}" : null;
    }

    private static bool IsDigits(string text)
    {
        foreach (var c in text)
        {
            if (c < '0' || c > '9')
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>The mask bits of one 64-bit half (starting at bit <paramref name="offset"/>) for a prefix.</summary>
    private static ulong Mask(int prefix, int offset, int bits)
    {
        if (bits == 32)
        {
            // IPv4 lives in the low half's low 32 bits; the high half is never compared (always 0 == 0).
            return offset == 0 ? 0 : prefix == 0 ? 0 : 0xFFFF_FFFFUL << (32 - prefix) & 0xFFFF_FFFFUL;
        }

        var inHalf = Math.Max(0, Math.Min(64, prefix - offset));
        return inHalf == 0 ? 0 : ulong.MaxValue << (64 - inHalf);
    }

    private static ulong ReadUInt64(byte[] bytes, int offset)
    {
        ulong value = 0;
        for (var i = 0; i < 8; i++)
        {
            value = (value << 8) | bytes[offset + i];
        }

        return value;
    }

    private static byte[] ToBytes(ulong high, ulong low)
    {
        var bytes = new byte[16];
        for (var i = 0; i < 8; i++)
        {
            bytes[i] = (byte)(high >> (56 - 8 * i));
            bytes[8 + i] = (byte)(low >> (56 - 8 * i));
        }

        return bytes;
    }
}

using System;
using System.Net;

namespace KeyShell.Engine.Security;

public sealed partial class AddressRules
{
    /// <summary>netstandard2.0 has no IPAddress.TryWriteBytes: a new array of the address's bytes per check.</summary>
    private static bool TryWriteBytes(IPAddress address, Span<byte> destination, out int written)
    {
        var bytes = address.GetAddressBytes();
        written = bytes.Length;
        return bytes.AsSpan().TryCopyTo(destination);
    }
}

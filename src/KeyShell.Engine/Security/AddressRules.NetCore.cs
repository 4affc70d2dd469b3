using System;
using System.Net;

namespace KeyShell.Engine.Security;

public sealed partial class AddressRules
{
    private static bool TryWriteBytes(IPAddress address, Span<byte> destination, out int written) =>
        address.TryWriteBytes(destination, out written);
}

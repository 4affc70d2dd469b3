using System.Net;
using System.Threading;
using System.Threading.Tasks;

namespace KeyShell.Engine.Client;

/// <summary>A host name's addresses; the lookup ends when the token is cancelled. (.NET 8; HostLookUp.NetStandard.cs is the other build's.)</summary>
internal static class HostLookUp
{
    public static Task<IPAddress[]> GetAddressesAsync(string host, CancellationToken cancellationToken) =>
        Dns.GetHostAddressesAsync(host, cancellationToken);
}

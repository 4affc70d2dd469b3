using System;
using System.Net;
using System.Threading;
using System.Threading.Tasks;

namespace KeyShell.Engine.Client;

/// <summary>A host name's addresses; the wait ends when the token is cancelled. (netstandard2.0; HostLookUp.NetCore.cs is the other build's.)</summary>
internal static class HostLookUp
{
    /// <summary>This build's lookup takes no token: a cancelled wait leaves it to finish on its own, its outcome observed.</summary>
    public static async Task<IPAddress[]> GetAddressesAsync(string host, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var lookUp = Dns.GetHostAddressesAsync(host);
        var cancelled = new TaskCompletionSource<bool>();
        using (cancellationToken.Register(() => cancelled.TrySetCanceled()))
        {
            if (await Task.WhenAny(lookUp, cancelled.Task).ConfigureAwait(false) != lookUp)
            {
                _ = lookUp.ContinueWith(static t => t.Exception, TaskContinuationOptions.OnlyOnFaulted);
                throw new OperationCanceledException(cancellationToken);
            }
        }

        return await lookUp.ConfigureAwait(false);
    }
}

using System.Net;
using KeyShell.Engine.Client;

namespace KeyShell.Engine.Tests;

/// <summary>The client's host lookup, on both engine builds (the netstandard2.0 one waits on the token by itself).</summary>
public class HostLookUpTests
{
    [Fact]
    public async Task FindsTheLoopbackAddressOfLocalhost()
    {
        var addresses = await HostLookUp.GetAddressesAsync("localhost", CancellationToken.None).WaitAsync(TestSupport.Bound);
        Assert.Contains(addresses, IPAddress.IsLoopback);
    }

    [Fact]
    public async Task ACancelledTokenEndsTheLookUp()
    {
        using var cancelled = new CancellationTokenSource();
        cancelled.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => HostLookUp.GetAddressesAsync("localhost", cancelled.Token).WaitAsync(TestSupport.Bound));
    }
}

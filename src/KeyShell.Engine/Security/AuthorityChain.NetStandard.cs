using System;
using System.Security.Cryptography.X509Certificates;

namespace KeyShell.Engine.Security;

/// <summary>The netstandard2.0 build's chain check (Windows PowerShell 5.1), which has no CustomRootTrust.</summary>
internal static partial class AuthorityChain
{
    public static string? Verify(X509Certificate2 certificate, X509Certificate2Collection authorities, string purpose, X509Certificate2Collection? intermediates) =>
        VerifyWithExtraStore(certificate, authorities, purpose, intermediates);

    // No switch to turn downloads of missing issuers off here: a timeout this short does it in effect.
    private static void DisableDownloads(X509ChainPolicy policy) => policy.UrlRetrievalTimeout = TimeSpan.FromMilliseconds(1);
}

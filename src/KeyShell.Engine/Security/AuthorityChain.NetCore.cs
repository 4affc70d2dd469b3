using System.Security.Cryptography.X509Certificates;

namespace KeyShell.Engine.Security;

/// <summary>The .NET 8 build's chain check (PowerShell 7).</summary>
internal static partial class AuthorityChain
{
    public static string? Verify(X509Certificate2 certificate, X509Certificate2Collection authorities, string purpose, X509Certificate2Collection? intermediates) =>
        VerifyWithCustomRoots(certificate, authorities, purpose, intermediates);

    /// <summary>.NET 5+: the authorities are the only roots the chain may end in (CustomRootTrust).</summary>
    internal static string? VerifyWithCustomRoots(X509Certificate2 certificate, X509Certificate2Collection authorities, string purpose, X509Certificate2Collection? intermediates)
    {
        using var chain = NewChain(purpose, intermediates);
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(authorities);
        return chain.Build(certificate) ? null : Describe(certificate, chain, purpose);
    }

    private static void DisableDownloads(X509ChainPolicy policy) => policy.DisableCertificateDownloads = true;
}

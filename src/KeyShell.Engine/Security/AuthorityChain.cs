using System;
using System.Collections.Generic;
using System.Linq;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace KeyShell.Engine.Security;

/// <summary>
/// Whether a certificate chains to one of a set of authorities, for a given purpose (client or server
/// authentication), offline: no revocation check, nothing downloaded. Returns null when it does, or the
/// reason in words when it does not. <c>Verify</c> and the switch that keeps downloads off differ between the
/// builds: AuthorityChain.NetCore.cs and AuthorityChain.NetStandard.cs.
/// </summary>
internal static partial class AuthorityChain
{
    public const string ClientAuthentication = "1.3.6.1.5.5.7.3.2";
    public const string ServerAuthentication = "1.3.6.1.5.5.7.3.1";

    /// <summary>
    /// netstandard2.0 has no CustomRootTrust: the authorities join the extra store, an unknown root is
    /// tolerated, and the root the chain ends in must then be one of the authorities. Compiled on every
    /// target so the tests run it too.
    /// </summary>
    internal static string? VerifyWithExtraStore(X509Certificate2 certificate, X509Certificate2Collection authorities, string purpose, X509Certificate2Collection? intermediates)
    {
        using var chain = NewChain(purpose, intermediates);
        chain.ChainPolicy.ExtraStore.AddRange(authorities);
        chain.ChainPolicy.VerificationFlags = X509VerificationFlags.AllowUnknownCertificateAuthority;
        var built = chain.Build(certificate);
        var elements = chain.ChainElements;
        var root = elements.Count > 0 ? elements[elements.Count - 1].Certificate : certificate;
        if (!authorities.Cast<X509Certificate2>().Any(a => a.RawData.AsSpan().SequenceEqual(root.RawData)))
        {
            return NotChained(certificate);
        }

        return built ? null : Describe(certificate, chain, purpose);
    }

    private static X509Chain NewChain(string purpose, X509Certificate2Collection? intermediates)
    {
        var chain = new X509Chain();
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        DisableDownloads(chain.ChainPolicy);
        chain.ChainPolicy.ApplicationPolicy.Add(new Oid(purpose));
        if (intermediates is not null)
        {
            chain.ChainPolicy.ExtraStore.AddRange(intermediates);
        }

        return chain;
    }

    private static string NotChained(X509Certificate2 certificate) =>
        $"it does not chain to an authority (issued by '{certificate.Issuer}')";

    /// <summary>The chain's problems, most telling first, in words (the status codes' own text as a fallback).</summary>
    private static string Describe(X509Certificate2 certificate, X509Chain chain, string purpose)
    {
        var reasons = new List<string>();
        var flags = X509ChainStatusFlags.NoError;
        foreach (var status in chain.ChainStatus)
        {
            flags |= status.Status;
        }

        if ((flags & (X509ChainStatusFlags.UntrustedRoot | X509ChainStatusFlags.PartialChain)) != 0)
        {
            reasons.Add(NotChained(certificate));
        }

        if ((flags & X509ChainStatusFlags.NotTimeValid) != 0)
        {
            reasons.Add($"it is out of its validity period ({certificate.NotBefore:u} to {certificate.NotAfter:u}, or an issuer's)");
        }

        if ((flags & X509ChainStatusFlags.NotValidForUsage) != 0)
        {
            reasons.Add(purpose == ClientAuthentication ? "it is not for client authentication (extended key usage)" : "it is not for server authentication (extended key usage)");
        }

        if ((flags & X509ChainStatusFlags.NotSignatureValid) != 0)
        {
            reasons.Add("a signature in its chain is not valid");
        }

        const X509ChainStatusFlags described = X509ChainStatusFlags.UntrustedRoot | X509ChainStatusFlags.PartialChain |
            X509ChainStatusFlags.NotTimeValid | X509ChainStatusFlags.NotValidForUsage | X509ChainStatusFlags.NotSignatureValid;
        foreach (var status in chain.ChainStatus)
        {
            if ((status.Status & described) == 0)
            {
                reasons.Add($"{status.Status}: {status.StatusInformation.Trim()}");
            }
        }

        return reasons.Count == 0 ? "its chain could not be built" : string.Join("; ", reasons.Distinct());
    }
}

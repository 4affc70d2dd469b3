using System;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;

namespace KeyShell.Engine.Security;

/// <summary>A certificate check's outcome: trusted, or refused with the reason (for the log and the counters).</summary>
public readonly struct CertificateVerdict
{
    private CertificateVerdict(bool trusted, string? reason)
    {
        Trusted = trusted;
        Reason = reason;
    }

    public bool Trusted { get; }

    /// <summary>Why the certificate was refused; null when trusted.</summary>
    public string? Reason { get; }

    public static CertificateVerdict Trust() => new(true, null);

    public static CertificateVerdict Refuse(string reason) => new(false, reason);

    public override string ToString() => Trusted ? "trusted" : "refused: " + Reason;
}

/// <summary>
/// Mutual TLS (Start-KeyServer -RequireClientCertificate -ClientCertificateAuthorityPath): a client is served
/// only when it presents a certificate for client authentication that chains to one of the authorities.
/// Offline: revocation is not checked and nothing is downloaded. The machine's own trusted roots play no part.
/// </summary>
public sealed class ClientCertificatePolicy
{
    public ClientCertificatePolicy(X509Certificate2Collection authorities)
    {
        if (authorities is null)
        {
            throw new ArgumentNullException(nameof(authorities));
        }

        if (authorities.Count == 0)
        {
            throw new ArgumentException("At least one authority certificate is needed.", nameof(authorities));
        }

        Authorities = authorities;
    }

    /// <summary>The certificates a client's certificate must chain to.</summary>
    public X509Certificate2Collection Authorities { get; }

    /// <summary>Reads the authorities from a PEM bundle or a DER certificate (see <see cref="CertificateLoader.LoadAuthorities"/>).</summary>
    public static ClientCertificatePolicy FromFile(string path) => new(CertificateLoader.LoadAuthorities(path));

    /// <summary>
    /// Whether a client's certificate is served. <paramref name="intermediates"/> are certificates the client
    /// sent along with it (its chain up to the authority).
    /// </summary>
    public CertificateVerdict Check(X509Certificate? certificate, X509Certificate2Collection? intermediates = null)
    {
        if (certificate is null)
        {
            return CertificateVerdict.Refuse("the client presented no certificate");
        }

        var owned = certificate as X509Certificate2 is null;
        var certificate2 = certificate as X509Certificate2 ?? new X509Certificate2(certificate);
        try
        {
            var reason = AuthorityChain.Verify(certificate2, Authorities, AuthorityChain.ClientAuthentication, intermediates);
            return reason is null
                ? CertificateVerdict.Trust()
                : CertificateVerdict.Refuse($"the client certificate '{certificate2.Subject}' is refused: {reason}");
        }
        finally
        {
            if (owned)
            {
                certificate2.Dispose();
            }
        }
    }

    /// <summary>
    /// The server side's SslStream callback: the client's certificate is checked against the authorities only
    /// (the system's verdict, <see cref="SslPolicyErrors"/>, is ignored). <paramref name="refused"/> hears why
    /// a certificate was refused.
    /// </summary>
    public RemoteCertificateValidationCallback CreateValidationCallback(Action<string>? refused = null) =>
        (_, certificate, chain, _) =>
        {
            var verdict = Check(certificate, Presented(chain));
            if (!verdict.Trusted)
            {
                refused?.Invoke(verdict.Reason!);
            }

            return verdict.Trusted;
        };

    /// <summary>The certificates the peer sent with its own (SslStream puts them in the chain's extra store).</summary>
    internal static X509Certificate2Collection? Presented(X509Chain? chain)
    {
        if (chain is null)
        {
            return null;
        }

        var presented = new X509Certificate2Collection();
        presented.AddRange(chain.ChainPolicy.ExtraStore);
        foreach (var element in chain.ChainElements)
        {
            presented.Add(element.Certificate);
        }

        return presented;
    }
}

using System;
using System.Security;
using System.Security.Cryptography.X509Certificates;
using KeyShell.Engine.Server;

namespace KeyShell.Engine.Security;

/// <summary>
/// What a TLS server presents: its certificate (with the private key) and the chain sent with it. Immutable,
/// so a server can swap one for another between handshakes (<see cref="TlsServerSettings.ReplaceCertificate"/>)
/// while a handshake in progress keeps the one it started with.
/// </summary>
public sealed class ServerCertificate
{
    /// <summary>Throws <see cref="KeyServerException"/> (CertificateInvalid) when the certificate has no private key.</summary>
    public ServerCertificate(X509Certificate2 certificate, X509Certificate2Collection? chain = null)
    {
        Certificate = certificate ?? throw new ArgumentNullException(nameof(certificate));
        if (!certificate.HasPrivateKey)
        {
            throw CertificateLoader.Invalid(
                $"The certificate '{certificate.Subject}' ({certificate.Thumbprint}) has no private key: a server needs its key to prove the certificate is its own.",
                certificate);
        }

        Chain = chain ?? new X509Certificate2Collection();
        Context = new TlsPlatform.ServerContext(certificate, Chain);
    }

    public X509Certificate2 Certificate { get; }

    /// <summary>
    /// Intermediate certificates sent with <see cref="Certificate"/> (the rest of a full-chain PEM or a PFX). On
    /// PowerShell 7; Windows PowerShell 5.1's TLS sends what Windows can build from its certificate stores.
    /// </summary>
    public X509Certificate2Collection Chain { get; }

    /// <summary>What each handshake presents, prepared once for this certificate.</summary>
    internal TlsPlatform.ServerContext Context { get; }

    /// <summary>Reads a certificate with its key from a file (see <see cref="CertificateLoader.Load(string, string?, SecureString?, out X509Certificate2Collection)"/>).</summary>
    public static ServerCertificate FromFile(string path, string? keyPath = null, SecureString? password = null)
    {
        var certificate = CertificateLoader.Load(path, keyPath, password, out var chain);
        return new ServerCertificate(certificate, chain);
    }

    public override string ToString() => $"{Certificate.Subject} ({Certificate.Thumbprint}, until {Certificate.NotAfter:yyyy-MM-dd})";
}

using System;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;

namespace KeyShell.Engine.Security;

/// <summary>
/// A TLS server's settings, shared by all its connections. It holds the certificate new handshakes present,
/// which <see cref="ReplaceCertificate"/> swaps without a restart (Set-KeyServer -CertificatePath): a
/// handshake takes the certificate once, as it starts.
/// </summary>
public sealed class TlsServerSettings
{
    private volatile ServerCertificate _certificate;

    public TlsServerSettings(ServerCertificate certificate, ClientCertificatePolicy? clientCertificatePolicy = null)
    {
        _certificate = certificate ?? throw new ArgumentNullException(nameof(certificate));
        ClientCertificatePolicy = clientCertificatePolicy;
    }

    /// <summary>The certificate the next handshake presents.</summary>
    public ServerCertificate Certificate => _certificate;

    /// <summary>Mutual TLS when set: clients must present a certificate that chains to its authorities.</summary>
    public ClientCertificatePolicy? ClientCertificatePolicy { get; }

    public bool RequireClientCertificate => ClientCertificatePolicy is not null;

    /// <summary>A handshake not finished within this is a failure (a stalled peer). Zero or less: only the caller's token bounds it.</summary>
    public TimeSpan HandshakeTimeout { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>TLS 1.2 and 1.3 unless narrowed (tests pin one).</summary>
    public SslProtocols Protocols { get; set; } = TlsHandshake.DefaultProtocols;

    /// <summary>New handshakes present <paramref name="certificate"/>; those under way finish with the old one.</summary>
    public void ReplaceCertificate(ServerCertificate certificate) =>
        _certificate = certificate ?? throw new ArgumentNullException(nameof(certificate));
}

/// <summary>A TLS client's settings (Invoke-KeyClient, Test-KeyServer, Measure-KeyServer -UseTls).</summary>
public sealed class TlsClientSettings
{
    /// <summary>Accept any server certificate (self-signed, expired, another name): for tests only.</summary>
    public bool SkipCertificateCheck { get; set; }

    /// <summary>Presented when the server asks for a client certificate (mutual TLS); must hold its private key.</summary>
    public X509Certificate2? ClientCertificate { get; set; }

    /// <summary>TLS 1.2 and 1.3 unless narrowed.</summary>
    public SslProtocols Protocols { get; set; } = TlsHandshake.DefaultProtocols;

    /// <summary>A handshake not finished within this is a failure. Zero or less: only the caller's token bounds it.</summary>
    public TimeSpan HandshakeTimeout { get; set; }

    /// <summary>
    /// When set, the server's certificate must chain to one of these instead of the machine's trusted roots
    /// (its name is still checked). No cmdlet sets it; the tests trust their own authority through it.
    /// </summary>
    internal X509Certificate2Collection? TrustedAuthorities { get; set; }

    /// <summary>What a client's options (-UseTls, -SkipCertificateCheck, -Certificate) ask for: null without TLS.</summary>
    internal static TlsClientSettings? Create(bool useTls, bool skipCertificateCheck, X509Certificate2? clientCertificate, TimeSpan handshakeTimeout) =>
        useTls
            ? new TlsClientSettings { SkipCertificateCheck = skipCertificateCheck, ClientCertificate = clientCertificate, HandshakeTimeout = handshakeTimeout }
            : null;
}

using System;
using KeyShell.Engine.Security;

namespace KeyShell.Engine.Server;

/// <summary>The settings of an exposed server: TLS, mutual TLS, address rules.</summary>
public sealed partial class KeyServerOptions
{
    /// <summary>How long a handshake may take when the idle timeout is off: a stalled peer must not hold a slot for ever.</summary>
    internal static readonly TimeSpan HandshakeTimeoutWithoutIdleTimeout = TimeSpan.FromSeconds(60);

    /// <summary>The certificate the server presents; when set, the port speaks TLS (1.2 and 1.3) only.</summary>
    public ServerCertificate? Certificate { get; set; }

    /// <summary>Mutual TLS: only clients whose certificate <see cref="ClientCertificatePolicy"/> trusts are served.</summary>
    public bool RequireClientCertificate { get; set; }

    /// <summary>The authorities client certificates must chain to; set with <see cref="RequireClientCertificate"/>.</summary>
    public ClientCertificatePolicy? ClientCertificatePolicy { get; set; }

    /// <summary>When set, only peers these rules allow are served; others are closed at accept, before any byte is read.</summary>
    public AddressRules? AllowedAddresses { get; set; }

    /// <summary>
    /// The TLS settings the server's connections share (the certificate holder that Set-KeyServer swaps), or
    /// null for a plain-text server. A handshake is bounded by the idle timeout (by
    /// <see cref="HandshakeTimeoutWithoutIdleTimeout"/> when that is off).
    /// </summary>
    internal TlsServerSettings? CreateTlsSettings() =>
        Certificate is null
            ? null
            : new TlsServerSettings(Certificate, RequireClientCertificate ? ClientCertificatePolicy : null)
            {
                HandshakeTimeout = IdleTimeout > TimeSpan.Zero ? IdleTimeout : HandshakeTimeoutWithoutIdleTimeout,
            };

    private void ValidateSecurity()
    {
        if (RequireClientCertificate && ClientCertificatePolicy is null)
        {
            throw new ArgumentException("A client certificate can be required only with the authorities it must chain to (ClientCertificatePolicy).", nameof(ClientCertificatePolicy));
        }

        if (!RequireClientCertificate && ClientCertificatePolicy is not null)
        {
            throw new ArgumentException("Client certificate authorities were given, but client certificates are not required (RequireClientCertificate).", nameof(RequireClientCertificate));
        }

        if (RequireClientCertificate && Certificate is null)
        {
            throw new ArgumentException("Client certificates are checked during a TLS handshake: the server needs its own certificate (Certificate).", nameof(Certificate));
        }
    }
}

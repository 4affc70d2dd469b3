using System;
using System.Linq;
using System.Net;
using System.Security.Cryptography.X509Certificates;
using KeyShell.Engine.Security;

namespace KeyShell.Engine.Server;

/// <summary>Why a server refused a peer: the word in its log line, <c>SYSTEM: Client refused (&lt;word&gt;)</c>.</summary>
public enum ClientRefusal
{
    /// <summary>Its address matches no -AllowedAddress rule; closed at accept, before any byte was read.</summary>
    Address,
    /// <summary>Mutual TLS: no client certificate, or one that does not chain to the authorities.</summary>
    Certificate,
    /// <summary>The TLS handshake failed: plain text or garbage on a TLS port, a protocol error, no handshake in time.</summary>
    Handshake,
}

/// <summary>An exposed server's side of KeyServer: its TLS settings, its address rules, and refusals.</summary>
public sealed partial class KeyServer
{
    private TlsServerSettings? _tls;
    private AddressRules? _allowedAddresses;

    /// <summary>Raised when a peer is refused (address rules, TLS), with the reason (on a worker thread).</summary>
    public event EventHandler<KeyServerEventArgs>? ClientRefused
    {
        add => Events.ClientRefused += value;
        remove => Events.ClientRefused -= value;
    }

    /// <summary>True when the port speaks TLS only.</summary>
    public bool UsesTls => _tls is not null;

    /// <summary>The certificate new TLS connections get; null for a plain-text server.</summary>
    public X509Certificate2? Certificate => _tls?.Certificate.Certificate;

    /// <summary>Mutual TLS: only clients with a certificate of the configured authorities are served.</summary>
    public bool RequireClientCertificate => _tls?.RequireClientCertificate ?? false;

    /// <summary>The address rules, canonical (<c>10.0.0.0/8</c>); null when every peer may connect.</summary>
    public string[]? AllowedAddress => _allowedAddresses?.Rules.Select(r => r.ToString()).ToArray();

    /// <summary>The TLS settings every handshake of this server takes (certificate holder, client policy, timeout); null for plain text.</summary>
    internal TlsServerSettings? Tls => _tls;

    /// <summary>The rules a peer must pass at accept; null when there are none.</summary>
    internal AddressRules? AllowedAddresses => _allowedAddresses;

    /// <summary>
    /// Gives new TLS connections another certificate; connections already open, and handshakes under way,
    /// keep theirs. Throws <see cref="KeyServerException"/> (TlsNotEnabled) for a server started without TLS:
    /// a plain-text port cannot turn into a TLS one under its clients.
    /// </summary>
    public void SetCertificate(ServerCertificate certificate)
    {
        if (certificate is null)
        {
            throw new ArgumentNullException(nameof(certificate));
        }

        var tls = _tls ?? throw new KeyServerException(
            KeyServerErrorKind.TlsNotEnabled,
            $"The server on port {Port} was started without TLS, and its clients speak plain text: it cannot switch to TLS. Stop it and start it again with -CertificatePath or -Certificate.",
            this);
        tls.ReplaceCertificate(certificate);
    }

    private void InitializeSecurity(KeyServerOptions options)
    {
        _tls = options.CreateTlsSettings();
        _allowedAddresses = options.AllowedAddresses;
    }
}

using System.Security.Cryptography.X509Certificates;
using KeyShell.Engine.Security;

namespace KeyShell.Engine.Client;

/// <summary>TLS for Invoke-KeyClient's sequences (-UseTls, -SkipCertificateCheck, -Certificate).</summary>
public sealed partial class KeyClientOptions
{
    /// <summary>Every connection shakes hands in TLS (1.2 or 1.3) before its first request.</summary>
    public bool UseTls { get; set; }

    /// <summary>Accept any server certificate: for test servers only.</summary>
    public bool SkipCertificateCheck { get; set; }

    /// <summary>Presented to a server that asks for one (mutual TLS); must hold its private key.</summary>
    public X509Certificate2? ClientCertificate { get; set; }

    /// <summary>The name the server's certificate must carry; null: <see cref="ComputerName"/>.</summary>
    public string? TargetHost { get; set; }

    /// <summary>The settings each connection's handshake takes, or null without TLS. The handshake counts in the request's <see cref="Timeout"/>.</summary>
    internal TlsClientSettings? CreateTlsSettings() => TlsClientSettings.Create(UseTls, SkipCertificateCheck, ClientCertificate, Timeout);

    internal string EffectiveTargetHost => TargetHost ?? ComputerName;
}

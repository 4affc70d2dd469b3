using System;
using System.Security.Cryptography.X509Certificates;
using KeyShell.Engine.Security;

namespace KeyShell.Engine.Client;

/// <summary>
/// TLS for the clients' connections (-UseTls, -SkipCertificateCheck, -Certificate): what
/// <see cref="KeyClientOptions"/> (Invoke-KeyClient) and <see cref="LoadOptions"/> (Measure-KeyServer) share.
/// </summary>
public abstract class ClientTlsOptions
{
    private protected ClientTlsOptions()
    {
    }

    /// <summary>Every connection shakes hands in TLS (1.2 or 1.3) before its first request (PerMessage: a full handshake per request).</summary>
    public bool UseTls { get; set; }

    /// <summary>Accept any server certificate: for test servers only.</summary>
    public bool SkipCertificateCheck { get; set; }

    /// <summary>Presented to a server that asks for one (mutual TLS); must hold its private key.</summary>
    public X509Certificate2? ClientCertificate { get; set; }

    /// <summary>The name the server's certificate must carry; null: the computer name connected to.</summary>
    public string? TargetHost { get; set; }

    internal string EffectiveTargetHost => TargetHost ?? ServerName;

    /// <summary>The computer name connected to.</summary>
    private protected abstract string ServerName { get; }

    /// <summary>What bounds a handshake: it counts in the request's timeout.</summary>
    private protected abstract TimeSpan HandshakeTimeout { get; }

    /// <summary>The settings each connection's handshake takes, or null without TLS.</summary>
    internal TlsClientSettings? CreateTlsSettings() => TlsClientSettings.Create(UseTls, SkipCertificateCheck, ClientCertificate, HandshakeTimeout);
}

using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using System.Threading;
using System.Threading.Tasks;

namespace KeyShell.Engine.Security;

/// <summary>
/// The TLS calls whose form differs between the engine's builds; this is the .NET 8 build's (PowerShell 7),
/// TlsPlatform.NetStandard.cs the other's. Both handshakes are bounded by the token; revocation is not checked.
/// </summary>
internal static class TlsPlatform
{
    public static Task AuthenticateAsServerAsync(SslStream ssl, ServerContext server, bool requireClientCertificate, SslProtocols protocols, CancellationToken cancellationToken)
    {
        var options = new SslServerAuthenticationOptions
        {
            ServerCertificateContext = server.Context,
            ClientCertificateRequired = requireClientCertificate,
            EnabledSslProtocols = protocols,
            CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
        };
        return ssl.AuthenticateAsServerAsync(options, cancellationToken);
    }

    public static Task AuthenticateAsClientAsync(SslStream ssl, string targetHost, X509CertificateCollection? clientCertificates, SslProtocols protocols, CancellationToken cancellationToken)
    {
        var options = new SslClientAuthenticationOptions
        {
            TargetHost = targetHost,
            ClientCertificates = clientCertificates,
            EnabledSslProtocols = protocols,
            CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
        };
        return ssl.AuthenticateAsClientAsync(options, cancellationToken);
    }

    /// <summary>
    /// What a server certificate presents, built once per certificate rather than once per handshake: the
    /// certificate and the chain sent with it. Offline: intermediates come from the file or the local stores,
    /// never fetched over the network.
    /// </summary>
    internal sealed class ServerContext
    {
        public ServerContext(X509Certificate2 certificate, X509Certificate2Collection chain) =>
            Context = SslStreamCertificateContext.Create(certificate, chain, offline: true);

        public SslStreamCertificateContext Context { get; }
    }
}

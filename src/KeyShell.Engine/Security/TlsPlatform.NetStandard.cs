using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using System.Threading;
using System.Threading.Tasks;

namespace KeyShell.Engine.Security;

/// <summary>
/// The TLS calls whose form differs between the engine's builds; this is the netstandard2.0 build's (Windows
/// PowerShell 5.1), TlsPlatform.NetCore.cs the other's. Both handshakes are bounded by the token; revocation
/// is not checked.
/// </summary>
internal static class TlsPlatform
{
    public static async Task AuthenticateAsServerAsync(SslStream ssl, ServerContext server, bool requireClientCertificate, SslProtocols protocols, CancellationToken cancellationToken)
    {
        // These overloads take no token: closing the stream is what ends a pending handshake.
        using (cancellationToken.Register(static state => ((SslStream)state!).Dispose(), ssl))
        {
            await ssl.AuthenticateAsServerAsync(server.Certificate, requireClientCertificate, protocols, checkCertificateRevocation: false).ConfigureAwait(false);
        }
    }

    public static async Task AuthenticateAsClientAsync(SslStream ssl, string targetHost, X509CertificateCollection? clientCertificates, SslProtocols protocols, CancellationToken cancellationToken)
    {
        using (cancellationToken.Register(static state => ((SslStream)state!).Dispose(), ssl))
        {
            await ssl.AuthenticateAsClientAsync(targetHost, clientCertificates, protocols, checkCertificateRevocation: false).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// What a server certificate presents: the certificate alone, as this build's SslStream takes it (it sends
    /// the chain Windows can build from its certificate stores, not the one given).
    /// </summary>
    internal sealed class ServerContext
    {
        public ServerContext(X509Certificate2 certificate, X509Certificate2Collection chain) => Certificate = certificate;

        public X509Certificate2 Certificate { get; }
    }
}

using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using KeyShell.Engine.Security;
using static KeyShell.Engine.Tests.TestCertificates;

namespace KeyShell.Engine.Tests;

/// <summary>
/// Certificates read from PEM files (by .NET's own PEM readers) serve real TLS handshakes as they are: on Linux a
/// key read from PEM needs no PKCS#12 round trip before SslStream can sign with it as a server, or as a client.
/// The client trusts the test authority only, so the server's name and chain are checked for real.
/// </summary>
public class PemTlsTests
{
    private const string Why = "PEM keys need .NET 5+ (Windows PowerShell 5.1 reads PFX; its clear error for PEM is tested there)";

    private static readonly Lazy<(X509Certificate2 Certificate, RSA Key)> RsaServer = new(NewRsaServer);

    private readonly string _directory = TestSupport.TempDirectory();

    private static TestCertificates Certificates => Shared;

    public static TheoryData<string, SslProtocols> KeyKinds()
    {
        var data = new TheoryData<string, SslProtocols>();
        foreach (var kind in new[] { "EC PKCS#8 in the certificate's file", "EC SEC1 in -KeyPath", "EC encrypted PKCS#8 in -KeyPath", "RSA PKCS#1 in -KeyPath", "RSA encrypted PKCS#8 in the certificate's file" })
        {
            data.Add(kind, SslProtocols.Tls12);
            data.Add(kind, SslProtocols.Tls13);
        }

        return data;
    }

    [Net8EngineTheory(Why)]
    [MemberData(nameof(KeyKinds))]
    public async Task EveryKindOfPemKeyServesAHandshake(string kind, SslProtocols protocol)
    {
        var (certificate, expected) = WriteServerFiles(kind);
        var client = TlsHandshakeTests.TrustingClient();
        client.Protocols = protocol;
        using var pair = await LoopbackPair.ConnectAsync();
        var (serverSide, clientSide) = await TlsHandshakeTests.Handshake(pair, new TlsServerSettings(certificate), client);
        using var server = await serverSide;
        using var clientStream = await clientSide;
        Assert.Equal(protocol, server.SslProtocol);
        Assert.Equal(expected.Thumbprint, new X509Certificate2(clientStream.RemoteCertificate!).Thumbprint);
        await TlsHandshakeTests.AssertTalks(server, clientStream);
    }

    [Net8EngineFact(Why)]
    public async Task AServerSendsTheChainFromItsFileInEitherOrderSoClientsReachTheRoot()
    {
        using var intermediate = NewAuthority("CN=KeyShell Intermediate CA", Certificates.Authority);
        using var leaf = NewSigned(intermediate, "CN=localhost", ServerAuthentication, server: true);
        var leafFirst = WritePem(_directory, "fullchain.pem", leaf, withKey: true, password: null, intermediate);
        var key = Write(_directory, "key.pem", KeyPem(leaf));
        var intermediateFirst = WritePem(_directory, "reversed.pem", intermediate, withKey: false, password: null, leaf);
        foreach (var certificate in new[] { ServerCertificate.FromFile(leafFirst), ServerCertificate.FromFile(intermediateFirst, key) })
        {
            Assert.Equal(intermediate.Thumbprint, Assert.Single(certificate.Chain).Thumbprint);
            using var pair = await LoopbackPair.ConnectAsync();
            var (serverSide, clientSide) = await TlsHandshakeTests.Handshake(pair, new TlsServerSettings(certificate), TlsHandshakeTests.TrustingClient());
            using var server = await serverSide;
            using var client = await clientSide;
            await TlsHandshakeTests.AssertTalks(server, client);
        }

        // Without the intermediate the same client cannot reach the root: the handshakes above relied on the chain sent.
        using var alone = await LoopbackPair.ConnectAsync();
        var (_, refused) = await TlsHandshakeTests.Handshake(alone, new TlsServerSettings(new ServerCertificate(leaf)), TlsHandshakeTests.TrustingClient());
        await Assert.ThrowsAsync<TlsCertificateUntrustedException>(() => refused);
    }

    [Net8EngineTheory(Why)]
    [InlineData(SslProtocols.Tls12)]
    [InlineData(SslProtocols.Tls13)]
    public async Task AClientCertificateFromPemServesMutualTls(SslProtocols protocol)
    {
        var clientFile = WritePem(_directory, "client.pem", Certificates.Client, withKey: true, password: "client pw");
        using var clientCertificate = CertificateLoader.Load(clientFile, null, Secure("client pw"));
        var client = TlsHandshakeTests.TrustingClient(clientCertificate);
        client.Protocols = protocol;
        using var pair = await LoopbackPair.ConnectAsync();
        var (serverSide, clientSide) = await TlsHandshakeTests.Handshake(pair, TlsHandshakeTests.ServerSettings(mutual: true), client);
        using var server = await serverSide;
        using var clientStream = await clientSide;
        Assert.Equal(Certificates.Client.Thumbprint, new X509Certificate2(server.RemoteCertificate!).Thumbprint);
        await TlsHandshakeTests.AssertTalks(server, clientStream);
    }

    /// <summary>The server's files for one kind of key, read back as KeyShell reads them; and the certificate expected.</summary>
    private (ServerCertificate Loaded, X509Certificate2 Expected) WriteServerFiles(string kind)
    {
        var ec = Certificates.Server;
        var (rsa, rsaKey) = RsaServer.Value;
        using var ecKey = ec.GetECDsaPrivateKey()!;
        var pbe = new PbeParameters(PbeEncryptionAlgorithm.Aes256Cbc, HashAlgorithmName.SHA256, 10_000);
        return kind switch
        {
            "EC PKCS#8 in the certificate's file" => (ServerCertificate.FromFile(WritePem(_directory, "ec.pem", ec)), ec),
            "EC SEC1 in -KeyPath" => (ServerCertificate.FromFile(Cert("ec.crt", ec), Write(_directory, "ec.key", ecKey.ExportECPrivateKeyPem())), ec),
            "EC encrypted PKCS#8 in -KeyPath" => (ServerCertificate.FromFile(Cert("ec.crt", ec), Write(_directory, "ec-encrypted.key", KeyPem(ec, "pw")), Secure("pw")), ec),
            "RSA PKCS#1 in -KeyPath" => (ServerCertificate.FromFile(Cert("rsa.crt", rsa), Write(_directory, "rsa.key", rsaKey.ExportRSAPrivateKeyPem())), rsa),
            "RSA encrypted PKCS#8 in the certificate's file" =>
                (ServerCertificate.FromFile(Write(_directory, "rsa.pem", rsa.ExportCertificatePem() + "\n" + rsaKey.ExportEncryptedPkcs8PrivateKeyPem("pw", pbe)), null, Secure("pw")), rsa),
            _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, null),
        };
    }

    private string Cert(string name, X509Certificate2 certificate) => WritePem(_directory, name, certificate, withKey: false);

    /// <summary>An RSA server certificate for localhost issued by the (ECDSA) test authority.</summary>
    private static (X509Certificate2, RSA) NewRsaServer()
    {
        var key = RSA.Create(2048);
        var request = new CertificateRequest("CN=localhost", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyEncipherment, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(new OidCollection { new Oid(ServerAuthentication) }, false));
        var names = new SubjectAlternativeNameBuilder();
        names.AddDnsName("localhost");
        request.CertificateExtensions.Add(names.Build());
        var notBefore = DateTimeOffset.UtcNow.AddDays(-1);
        var serial = RandomNumberGenerator.GetBytes(12);
        serial[0] &= 0x7F; // a positive number
        using var authorityKey = Shared.Authority.GetECDsaPrivateKey()!;
        using var signed = request.Create(Shared.Authority.SubjectName, X509SignatureGenerator.CreateForECDsa(authorityKey), notBefore, notBefore.AddDays(30), serial);
        return (signed.CopyWithPrivateKey(key), key);
    }
}

using System.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace KeyShell.Engine.Tests;

/// <summary>
/// Certificates the TLS tests make for themselves (ECDSA P-256: fast): an authority, a server certificate for
/// localhost, 127.0.0.1 and ::1 signed by it, client certificates signed by it and by a second authority,
/// self-signed ones; and the files (PEM, PFX) the loader reads. Made once per test run.
/// </summary>
internal sealed class TestCertificates
{
    public const string ServerAuthentication = "1.3.6.1.5.5.7.3.1";
    public const string ClientAuthentication = "1.3.6.1.5.5.7.3.2";

    private static readonly Lazy<TestCertificates> SharedSet = new(() => new TestCertificates());

    private TestCertificates()
    {
        Authority = NewAuthority("CN=KeyShell Test CA");
        OtherAuthority = NewAuthority("CN=KeyShell Other CA");
        Server = NewSigned(Authority, "CN=localhost", ServerAuthentication, server: true);
        OtherServer = NewSigned(Authority, "CN=localhost (second)", ServerAuthentication, server: true);
        Client = NewSigned(Authority, "CN=client", ClientAuthentication);
        ClientOfOtherAuthority = NewSigned(OtherAuthority, "CN=stranger", ClientAuthentication);
        SelfSignedClient = NewSelfSigned("CN=self-signed client", ClientAuthentication);
        SelfSignedServer = NewSelfSigned("CN=localhost", ServerAuthentication, server: true);
        ExpiredClient = NewSigned(Authority, "CN=expired client", ClientAuthentication, notAfter: DateTimeOffset.UtcNow.AddHours(-1));
    }

    public static TestCertificates Shared => SharedSet.Value;

    public X509Certificate2 Authority { get; }

    public X509Certificate2 OtherAuthority { get; }

    /// <summary>CN=localhost, SANs localhost, 127.0.0.1, ::1; server authentication; signed by <see cref="Authority"/>.</summary>
    public X509Certificate2 Server { get; }

    /// <summary>Another certificate like <see cref="Server"/>, for swapping certificates.</summary>
    public X509Certificate2 OtherServer { get; }

    public X509Certificate2 Client { get; }

    public X509Certificate2 ClientOfOtherAuthority { get; }

    public X509Certificate2 SelfSignedClient { get; }

    public X509Certificate2 SelfSignedServer { get; }

    public X509Certificate2 ExpiredClient { get; }

    public static X509Certificate2 NewAuthority(string subject, X509Certificate2? issuer = null)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        var notBefore = DateTimeOffset.UtcNow.AddDays(issuer is null ? -3 : -2); // leaves start a day later than their issuer
        if (issuer is null)
        {
            return request.CreateSelfSigned(notBefore, notBefore.AddYears(1));
        }

        using var signed = request.Create(issuer, notBefore, issuer.NotAfter.AddDays(-1), NewSerial());
        return signed.CopyWithPrivateKey(key);
    }

    public static X509Certificate2 NewSigned(X509Certificate2 issuer, string subject, string purpose, bool server = false, DateTimeOffset? notAfter = null, ECDsa? key = null)
    {
        using var owned = key is null ? ECDsa.Create(ECCurve.NamedCurves.nistP256) : null;
        var request = Leaf(subject, key ?? owned!, purpose, server);
        var notBefore = DateTimeOffset.UtcNow.AddDays(-1);
        using var signed = request.Create(issuer, notBefore, notAfter ?? notBefore.AddDays(30), NewSerial());
        return signed.CopyWithPrivateKey(key ?? owned!);
    }

    public static X509Certificate2 NewSelfSigned(string subject, string purpose, bool server = false)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var notBefore = DateTimeOffset.UtcNow.AddDays(-1);
        return Leaf(subject, key, purpose, server).CreateSelfSigned(notBefore, notBefore.AddDays(30));
    }

    /// <summary>An RSA certificate with its key (PKCS#1 and RSA/ECDSA mismatch tests).</summary>
    public static X509Certificate2 NewRsaSelfSigned(string subject, out RSA key)
    {
        key = RSA.Create(2048);
        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var notBefore = DateTimeOffset.UtcNow.AddDays(-1);
        return request.CreateSelfSigned(notBefore, notBefore.AddDays(30));
    }

    /// <summary>A file holding the certificate's PEM, then (when asked) its PKCS#8 key, optionally encrypted.</summary>
    public static string WritePem(string directory, string name, X509Certificate2 certificate, bool withKey = true, string? password = null, params X509Certificate2[] more)
    {
        var text = certificate.ExportCertificatePem() + "\n" + string.Concat(more.Select(c => c.ExportCertificatePem() + "\n"));
        if (withKey)
        {
            text += KeyPem(certificate, password);
        }

        return Write(directory, name, text);
    }

    public static string KeyPem(X509Certificate2 certificate, string? password = null)
    {
        using AsymmetricAlgorithm key = (AsymmetricAlgorithm?)certificate.GetECDsaPrivateKey() ?? certificate.GetRSAPrivateKey()!;
        return password is null
            ? key.ExportPkcs8PrivateKeyPem() + "\n"
            : key.ExportEncryptedPkcs8PrivateKeyPem(password, new PbeParameters(PbeEncryptionAlgorithm.Aes256Cbc, HashAlgorithmName.SHA256, 10_000)) + "\n";
    }

    public static string WritePfx(string directory, string name, X509Certificate2 certificate, string? password, params X509Certificate2[] chain)
    {
        var collection = new X509Certificate2Collection(certificate);
        collection.AddRange(chain);
        var path = Path.Combine(directory, name);
        File.WriteAllBytes(path, collection.Export(X509ContentType.Pkcs12, password)!);
        return path;
    }

    public static string Write(string directory, string name, string text)
    {
        var path = Path.Combine(directory, name);
        File.WriteAllText(path, text);
        return path;
    }

    public static SecureString Secure(string text)
    {
        var secure = new SecureString();
        foreach (var c in text)
        {
            secure.AppendChar(c);
        }

        secure.MakeReadOnly();
        return secure;
    }

    private static CertificateRequest Leaf(string subject, ECDsa key, string purpose, bool server)
    {
        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, false));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(new OidCollection { new Oid(purpose) }, false));
        if (server)
        {
            var names = new SubjectAlternativeNameBuilder();
            names.AddDnsName("localhost");
            names.AddIpAddress(System.Net.IPAddress.Loopback);
            names.AddIpAddress(System.Net.IPAddress.IPv6Loopback);
            request.CertificateExtensions.Add(names.Build());
        }

        return request;
    }

    private static byte[] NewSerial()
    {
        var serial = RandomNumberGenerator.GetBytes(12);
        serial[0] &= 0x7F; // a positive number
        return serial;
    }
}

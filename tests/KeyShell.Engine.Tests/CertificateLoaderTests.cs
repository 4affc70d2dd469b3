using System.Security.Cryptography;
using System.Text;
using System.Security.Cryptography.X509Certificates;
using KeyShell.Engine.Security;
using KeyShell.Engine.Server;
using static KeyShell.Engine.Tests.TestCertificates;

namespace KeyShell.Engine.Tests;

public class CertificateLoaderTests
{
    private readonly string _directory = TestSupport.TempDirectory();
    private static TestCertificates Certificates => Shared;

    private static void AssertIsServerCertificate(X509Certificate2 loaded)
    {
        Assert.True(loaded.HasPrivateKey);
        Assert.Equal(Certificates.Server.Thumbprint, loaded.Thumbprint);
        using var key = loaded.GetECDsaPrivateKey()!;
        var signature = key.SignData(new byte[] { 1, 2, 3 }, HashAlgorithmName.SHA256);
        using var publicKey = Certificates.Server.GetECDsaPublicKey()!;
        Assert.True(publicKey.VerifyData(new byte[] { 1, 2, 3 }, signature, HashAlgorithmName.SHA256), "the loaded key is the certificate's");
    }

    private static KeyServerException AssertInvalid(Action load, string message, string target)
    {
        var error = Assert.Throws<KeyServerException>(load);
        Assert.Equal(KeyServerErrorKind.CertificateInvalid, error.Kind);
        Assert.Contains(message, error.Message);
        Assert.Equal(target, error.Target);
        return error;
    }

#if ENGINE_NETSTANDARD
    [Fact]
    public void APemFileOnTheNetStandardBuildIsAClearErrorThatNamesPfx()
    {
        var path = WritePem(_directory, "server.pem", Certificates.Server);
        var error = AssertInvalid(() => CertificateLoader.Load(path, null, null, out _), "needs PowerShell 7", path);
        Assert.Contains("PFX", error.Message);
    }
#endif

    [Net8EngineFact("PEM files need .NET 5+ (Windows PowerShell 5.1 reads PFX; its clear error for PEM is tested there)")]
    public void ReadsAPemFileHoldingTheCertificateAndItsKey()
    {
        var path = WritePem(_directory, "server.pem", Certificates.Server);
        AssertIsServerCertificate(CertificateLoader.Load(path, null, null, out var chain));
        Assert.Empty(chain);
    }

    [Net8EngineFact("PEM files need .NET 5+ (Windows PowerShell 5.1 reads PFX; its clear error for PEM is tested there)")]
    public void ReadsTheKeyFromItsOwnFile()
    {
        var path = WritePem(_directory, "cert.pem", Certificates.Server, withKey: false);
        var key = Write(_directory, "key.pem", KeyPem(Certificates.Server));
        AssertIsServerCertificate(CertificateLoader.Load(path, key));
    }

    [Net8EngineFact("PEM files need .NET 5+ (Windows PowerShell 5.1 reads PFX; its clear error for PEM is tested there)")]
    public void ReadsAnEncryptedPkcs8KeyWithItsPassword()
    {
        var path = WritePem(_directory, "cert.pem", Certificates.Server, withKey: false);
        var key = Write(_directory, "key.pem", KeyPem(Certificates.Server, "s3cret"));
        AssertIsServerCertificate(CertificateLoader.Load(path, key, Secure("s3cret")));
    }

    [Net8EngineFact("PEM files need .NET 5+ (Windows PowerShell 5.1 reads PFX; its clear error for PEM is tested there)")]
    public void ReadsSec1AndPkcs1Keys()
    {
        using var ec = Certificates.Server.GetECDsaPrivateKey()!;
        var ecPath = Write(_directory, "ec.pem", Certificates.Server.ExportCertificatePem() + "\n" + ec.ExportECPrivateKeyPem());
        AssertIsServerCertificate(CertificateLoader.Load(ecPath));

        using var rsaCertificate = NewRsaSelfSigned("CN=rsa", out var rsa);
        using (rsa)
        {
            var cert = Write(_directory, "rsa.pem", rsaCertificate.ExportCertificatePem());
            var key = Write(_directory, "rsa.key", rsa.ExportRSAPrivateKeyPem());
            var loaded = CertificateLoader.Load(cert, key);
            Assert.True(loaded.HasPrivateKey);
            Assert.Equal(rsaCertificate.Thumbprint, loaded.Thumbprint);
        }
    }

    [Net8EngineFact("PEM files need .NET 5+ (Windows PowerShell 5.1 reads PFX; its clear error for PEM is tested there)")]
    public void IgnoresAPasswordGivenForAKeyThatIsNotEncrypted()
    {
        var path = WritePem(_directory, "server.pem", Certificates.Server);
        AssertIsServerCertificate(CertificateLoader.Load(path, null, Secure("unneeded")));
    }

    [Net8EngineFact("PEM files need .NET 5+ (Windows PowerShell 5.1 reads PFX; its clear error for PEM is tested there)")]
    public void TakesTheCertificateTheKeyBelongsToFromAFullChainInAnyOrder()
    {
        var leafFirst = WritePem(_directory, "fullchain.pem", Certificates.Server, withKey: false, password: null, Certificates.Authority);
        var key = Write(_directory, "key.pem", KeyPem(Certificates.Server));
        AssertIsServerCertificate(CertificateLoader.Load(leafFirst, key, null, out var chain));
        Assert.Equal(Certificates.Authority.Thumbprint, Assert.Single(chain).Thumbprint);

        var authorityFirst = WritePem(_directory, "reversed.pem", Certificates.Authority, withKey: false, password: null, Certificates.Server);
        AssertIsServerCertificate(CertificateLoader.Load(authorityFirst, key, null, out chain));
        Assert.Equal(Certificates.Authority.Thumbprint, Assert.Single(chain).Thumbprint);
    }

    [Fact]
    public void ReadsAPfxWithAndWithoutAPasswordAndItsChain()
    {
        var protectedPfx = WritePfx(_directory, "server.pfx", Certificates.Server, "pfx-pass", Certificates.Authority);
        AssertIsServerCertificate(CertificateLoader.Load(protectedPfx, null, Secure("pfx-pass"), out var chain));
        Assert.Equal(Certificates.Authority.Thumbprint, Assert.Single(chain).Thumbprint);

        var openPfx = WritePfx(_directory, "open.pfx", Certificates.Server, null);
        AssertIsServerCertificate(CertificateLoader.Load(openPfx));
    }

    [Net8EngineFact("PEM files need .NET 5+ (Windows PowerShell 5.1 reads PFX; its clear error for PEM is tested there)")]
    public void ServerCertificateFromFileCarriesTheChain()
    {
        var path = WritePem(_directory, "fullchain.pem", Certificates.Server, withKey: true, password: null, Certificates.Authority);
        var certificate = ServerCertificate.FromFile(path);
        AssertIsServerCertificate(certificate.Certificate);
        Assert.Equal(Certificates.Authority.Thumbprint, Assert.Single(certificate.Chain).Thumbprint);
    }

    [Fact]
    public void AMissingFileSaysSo()
    {
        var missing = Path.Combine(_directory, "nope.pem");
        AssertInvalid(() => CertificateLoader.Load(missing), $"The certificate file '{missing}' does not exist.", missing);
        var cert = WritePem(_directory, "cert.pem", Certificates.Server, withKey: false);
        AssertInvalid(() => CertificateLoader.Load(cert, missing), $"The key file '{missing}' does not exist.", missing);
        AssertInvalid(() => CertificateLoader.LoadAuthorities(missing), $"The authority file '{missing}' does not exist.", missing);
    }

    [Fact]
    public void AFileThatIsNoCertificateSaysSo()
    {
        var text = Write(_directory, "notes.txt", "just some text\n");
        AssertInvalid(() => CertificateLoader.Load(text), "is not a certificate: neither PEM", text);
        var bytes = Path.Combine(_directory, "random.bin");
        File.WriteAllBytes(bytes, RandomNumberGenerator.GetBytes(600));
        AssertInvalid(() => CertificateLoader.Load(bytes), "is not a certificate", bytes);
        var keyOnly = Write(_directory, "key-only.pem", KeyPem(Certificates.Server));
        AssertInvalid(() => CertificateLoader.Load(keyOnly), "holds no certificate", keyOnly);
        var broken = Write(_directory, "broken.pem", "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n");
        AssertInvalid(() => CertificateLoader.Load(broken), "not base64", broken);
    }

    [Net8EngineFact("PEM files need .NET 5+ (Windows PowerShell 5.1 reads PFX; its clear error for PEM is tested there)")]
    public void ACertificateWithoutAKeySaysWhereTheKeyShouldCome()
    {
        var pem = WritePem(_directory, "cert.pem", Certificates.Server, withKey: false);
        AssertInvalid(() => CertificateLoader.Load(pem), "holds a certificate but no private key: give the key's file with -KeyPath", pem);
        var notAKey = WritePem(_directory, "other-cert.pem", Certificates.Client, withKey: false);
        AssertInvalid(() => CertificateLoader.Load(pem, notAKey), "holds no private key", notAKey);
        var der = Path.Combine(_directory, "cert.cer");
        File.WriteAllBytes(der, Certificates.Server.RawData);
        AssertInvalid(() => CertificateLoader.Load(der), "is a certificate without its private key (DER)", der);
        var pfxWithoutKey = Path.Combine(_directory, "nokey.pfx");
        using (var publicOnly = X509CertificateLoader.LoadCertificate(Certificates.Server.RawData))
        {
            File.WriteAllBytes(pfxWithoutKey, new X509Certificate2Collection(publicOnly).Export(X509ContentType.Pkcs12, "p")!);
        }

        AssertInvalid(() => CertificateLoader.Load(pfxWithoutKey, null, Secure("p")), "holds no certificate with a private key", pfxWithoutKey);
        using var withoutKey = X509CertificateLoader.LoadCertificate(Certificates.Server.RawData);
        var error = Assert.Throws<KeyServerException>(() => new ServerCertificate(withoutKey));
        Assert.Equal(KeyServerErrorKind.CertificateInvalid, error.Kind);
        Assert.Contains("has no private key", error.Message);
        Assert.Same(withoutKey, error.Target);
    }

    [Net8EngineFact("PEM files need .NET 5+ (Windows PowerShell 5.1 reads PFX; its clear error for PEM is tested there)")]
    public void AWrongOrMissingPasswordSaysSo()
    {
        var cert = WritePem(_directory, "cert.pem", Certificates.Server, withKey: false);
        var key = Write(_directory, "key.pem", KeyPem(Certificates.Server, "right"));
        AssertInvalid(() => CertificateLoader.Load(cert, key, Secure("wrong")), $"Cannot decrypt the private key in '{key}': the password is wrong", key);
        AssertInvalid(() => CertificateLoader.Load(cert, key), $"The private key in '{key}' is encrypted: give its password", key);

        var pfx = WritePfx(_directory, "server.pfx", Certificates.Server, "right");
        AssertInvalid(() => CertificateLoader.Load(pfx, null, Secure("wrong")), $"Cannot open '{pfx}': the password is wrong", pfx);
        AssertInvalid(() => CertificateLoader.Load(pfx), $"Cannot open '{pfx}': it needs a password", pfx);
    }

    [Net8EngineFact("PEM files need .NET 5+ (Windows PowerShell 5.1 reads PFX; its clear error for PEM is tested there)")]
    public void AKeyOfAnotherCertificateSaysSo()
    {
        var cert = WritePem(_directory, "cert.pem", Certificates.Server, withKey: false);
        var otherKey = Write(_directory, "other.key", KeyPem(Certificates.Client));
        AssertInvalid(() => CertificateLoader.Load(cert, otherKey), "does not belong to the certificate", otherKey);
        var encryptedOther = Write(_directory, "other-encrypted.key", KeyPem(Certificates.Client, "pw"));
        AssertInvalid(() => CertificateLoader.Load(cert, encryptedOther, Secure("pw")), "does not belong to the certificate", encryptedOther);

        using var rsaCertificate = NewRsaSelfSigned("CN=rsa", out var rsa);
        using (rsa)
        {
            var rsaKey = Write(_directory, "rsa.key", rsa.ExportPkcs8PrivateKeyPem());
            AssertInvalid(() => CertificateLoader.Load(cert, rsaKey), "it is an RSA key, the certificate's is ECDSA", rsaKey);
            var rsaEncrypted = Write(_directory, "rsa-encrypted.key", rsa.ExportEncryptedPkcs8PrivateKeyPem("pw", new PbeParameters(PbeEncryptionAlgorithm.Aes128Cbc, HashAlgorithmName.SHA256, 1000)));
            AssertInvalid(() => CertificateLoader.Load(cert, rsaEncrypted, Secure("pw")), "it is an RSA key, the certificate's is ECDSA", rsaEncrypted);
        }
    }

    [Fact]
    public void ReadsAuthorityFilesWrittenWithAByteOrderMark()
    {
        // Windows PowerShell writes UTF-8 with a byte order mark (Set-Content -Encoding UTF8), and UTF-16 (Out-File).
        var pem = Certificates.Authority.ExportCertificatePem() + "\n";
        var utf8 = Path.Combine(_directory, "utf8-bom.pem");
        File.WriteAllText(utf8, pem, new UTF8Encoding(encoderShouldEmitUTF8Identifier: true));
        var utf16 = Path.Combine(_directory, "utf16.pem");
        File.WriteAllText(utf16, pem, Encoding.Unicode);
        foreach (var path in new[] { utf8, utf16 })
        {
            Assert.Equal(Certificates.Authority.Thumbprint, Assert.Single(CertificateLoader.LoadAuthorities(path)).Thumbprint);
        }
    }

    [Net8EngineFact("PEM files need .NET 5+ (Windows PowerShell 5.1 reads PFX; its clear error for PEM is tested there)")]
    public void ReadsACertificateAndKeyWrittenWithAByteOrderMark()
    {
        var combined = Path.Combine(_directory, "server-bom.pem");
        File.WriteAllText(combined, Certificates.Server.ExportCertificatePem() + "\n" + KeyPem(Certificates.Server), new UTF8Encoding(encoderShouldEmitUTF8Identifier: true));
        AssertIsServerCertificate(CertificateLoader.Load(combined));

        var cert = WritePem(_directory, "cert.pem", Certificates.Server, withKey: false);
        var key = Path.Combine(_directory, "key-utf16.pem");
        File.WriteAllText(key, KeyPem(Certificates.Server), Encoding.Unicode);
        AssertIsServerCertificate(CertificateLoader.Load(cert, key));
    }

    [Fact]
    public void ReadsAuthoritiesConcatenatedFromFilesWithoutAFinalLineBreak()
    {
        // cat a.pem b.pem, where a.pem does not end in a line break: -----END CERTIFICATE----------BEGIN CERTIFICATE-----
        var bundle = Write(_directory, "glued.pem", Certificates.Authority.ExportCertificatePem() + Certificates.OtherAuthority.ExportCertificatePem());
        Assert.Equal(new[] { Certificates.Authority.Thumbprint, Certificates.OtherAuthority.Thumbprint }, CertificateLoader.LoadAuthorities(bundle).Select(a => a.Thumbprint));
    }

    [Net8EngineFact("PEM files need .NET 5+ (Windows PowerShell 5.1 reads PFX; its clear error for PEM is tested there)")]
    public void ReadsACertificateChainAndKeyConcatenatedWithoutLineBreaks()
    {
        var path = Write(_directory, "glued.pem", Certificates.Server.ExportCertificatePem() + Certificates.Authority.ExportCertificatePem() + KeyPem(Certificates.Server));
        AssertIsServerCertificate(CertificateLoader.Load(path, null, null, out var chain));
        Assert.Equal(Certificates.Authority.Thumbprint, Assert.Single(chain).Thumbprint);
    }

    [Fact]
    public void ACertificateBlockThatCannotBeReadSaysSoEvenAmongGoodOnes()
    {
        var unterminated = Write(_directory, "unterminated.pem", Certificates.Authority.ExportCertificatePem().Replace("-----END CERTIFICATE-----", string.Empty));
        AssertInvalid(() => CertificateLoader.LoadAuthorities(unterminated), "has a certificate block that cannot be read", unterminated);
        var oneBad = Write(_directory, "one-bad.pem", Certificates.Authority.ExportCertificatePem() + "\n-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n");
        AssertInvalid(() => CertificateLoader.LoadAuthorities(oneBad), "not base64", oneBad);
        var notACertificate = Write(_directory, "not-a-certificate.pem", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
        AssertInvalid(() => CertificateLoader.LoadAuthorities(notACertificate), "has a certificate that cannot be read", notACertificate);
        AssertInvalid(() => CertificateLoader.Load(notACertificate), "has a certificate that cannot be read", notACertificate);
    }

    [Net8EngineFact("PEM files need .NET 5+ (Windows PowerShell 5.1 reads PFX; its clear error for PEM is tested there)")]
    public void FindsTheKeysCertificateInAChainThatMixesRsaAndEcdsa()
    {
        using var rsaAuthority = NewRsaSelfSigned("CN=rsa authority", out var rsa);
        rsa.Dispose();
        var path = WritePem(_directory, "mixed.pem", rsaAuthority, withKey: false, password: null, Certificates.Server);
        var key = Write(_directory, "key.pem", KeyPem(Certificates.Server));
        AssertIsServerCertificate(CertificateLoader.Load(path, key, null, out var chain));
        Assert.Equal(rsaAuthority.Thumbprint, Assert.Single(chain).Thumbprint);
    }

    [Net8EngineFact("PEM files need .NET 5+ (Windows PowerShell 5.1 reads PFX; its clear error for PEM is tested there)")]
    public void AKeyThatCannotBeReadSaysSo()
    {
        var cert = WritePem(_directory, "cert.pem", Certificates.Server, withKey: false);
        var damaged = Write(_directory, "damaged.key", "-----BEGIN PRIVATE KEY-----\n" + Convert.ToBase64String(RandomNumberGenerator.GetBytes(64)) + "\n-----END PRIVATE KEY-----\n");
        AssertInvalid(() => CertificateLoader.Load(cert, damaged), $"The private key in '{damaged}' cannot be read", damaged);
    }

    [Net8EngineFact("PEM files need .NET 5+ (Windows PowerShell 5.1 reads PFX; its clear error for PEM is tested there)")]
    public void AKeyInOpenSslsTraditionalEncryptedFormatSaysHowToConvertIt()
    {
        var cert = WritePem(_directory, "cert.pem", Certificates.Server, withKey: false);
        var key = Write(_directory, "traditional.key", "-----BEGIN EC PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-256-CBC,8A6B5C3E2D1F0A9B8C7D6E5F4A3B2C1D\n\n" +
            Convert.ToBase64String(RandomNumberGenerator.GetBytes(48)) + "\n-----END EC PRIVATE KEY-----\n");
        var error = AssertInvalid(() => CertificateLoader.Load(cert, key, Secure("pw")), "OpenSSL's traditional format", key);
        Assert.Contains("openssl pkcs8 -topk8", error.Message);
    }

    [Net8EngineFact("PEM files need .NET 5+ (Windows PowerShell 5.1 reads PFX; its clear error for PEM is tested there)")]
    public void ACertificateWhoseKeyIsNeitherRsaNorEcdsaSaysSo()
    {
        using var dsa = DSA.Create(1024);
        using var authorityKey = Certificates.Authority.GetECDsaPrivateKey()!;
        var request = new CertificateRequest(new X500DistinguishedName("CN=dsa"), new PublicKey(dsa), HashAlgorithmName.SHA256);
        var notBefore = DateTimeOffset.UtcNow.AddDays(-1);
        using var certificate = request.Create(Certificates.Authority.SubjectName, X509SignatureGenerator.CreateForECDsa(authorityKey), notBefore, notBefore.AddDays(30), new byte[] { 1, 2, 3 });
        var path = Write(_directory, "dsa.pem", certificate.ExportCertificatePem() + "\n" + dsa.ExportPkcs8PrivateKeyPem());
        AssertInvalid(() => CertificateLoader.Load(path), "from PEM, KeyShell reads RSA and ECDSA keys", path);
    }

    [Fact]
    public void KeyPathGoesWithPemOnly()
    {
        var pfx = WritePfx(_directory, "server.pfx", Certificates.Server, null);
        var key = Write(_directory, "key.pem", KeyPem(Certificates.Server));
        AssertInvalid(() => CertificateLoader.Load(pfx, key), "-KeyPath goes with a PEM certificate", key);
    }

    [Fact]
    public void ReadsAuthorityBundlesInPemAndDer()
    {
        var bundle = Write(_directory, "cas.pem", Certificates.Authority.ExportCertificatePem() + "\n" + Certificates.OtherAuthority.ExportCertificatePem() + "\n");
        var authorities = CertificateLoader.LoadAuthorities(bundle);
        Assert.Equal(new[] { Certificates.Authority.Thumbprint, Certificates.OtherAuthority.Thumbprint }, authorities.Select(a => a.Thumbprint));
        Assert.All(authorities, a => Assert.False(a.HasPrivateKey));

        var der = Path.Combine(_directory, "ca.cer");
        File.WriteAllBytes(der, Certificates.Authority.RawData);
        Assert.Equal(Certificates.Authority.Thumbprint, Assert.Single(CertificateLoader.LoadAuthorities(der)).Thumbprint);

        var empty = Write(_directory, "empty.pem", KeyPem(Certificates.Server));
        AssertInvalid(() => CertificateLoader.LoadAuthorities(empty), "holds no certificate", empty);
    }

    [Fact]
    public void APkcs12RoundTripKeepsTheKey()
    {
        // What Windows needs for a PEM key (SChannel cannot use an ephemeral one); run here so it is tested.
        using var copy = CertificateLoader.RoundTripThroughPkcs12(Certificates.Server);
        AssertIsServerCertificate(copy);
        Assert.NotSame(Certificates.Server, copy);
        Assert.True(Certificates.Server.HasPrivateKey, "the original is left alone");

        // Elsewhere than on Windows the certificate is used as it is.
        Assert.Same(Certificates.Server, CertificateLoader.UsableBySchannel(Certificates.Server));
    }
}

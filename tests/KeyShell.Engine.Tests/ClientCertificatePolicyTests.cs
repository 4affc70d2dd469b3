using System.Security.Cryptography.X509Certificates;
using KeyShell.Engine.Security;
using static KeyShell.Engine.Tests.TestCertificates;

namespace KeyShell.Engine.Tests;

/// <summary>
/// The chain check behind mutual TLS, run through both verifiers: .NET 5+'s custom root trust (what the
/// PowerShell 7 build uses) and the extra-store check the netstandard2.0 build (Windows PowerShell 5.1) uses.
/// </summary>
public class ClientCertificatePolicyTests
{
#if ENGINE_NETSTANDARD
    // The netstandard2.0 build has only the extra-store verifier.
    public static TheoryData<string> Verifiers => new() { "ExtraStore" };
#else
    public static TheoryData<string> Verifiers => new() { "CustomRoots", "ExtraStore" };
#endif

    private static TestCertificates Certificates => Shared;

    private static string? Verify(string verifier, X509Certificate2 certificate, X509Certificate2Collection authorities, X509Certificate2Collection? intermediates = null) =>
#if ENGINE_NETSTANDARD
        AuthorityChain.VerifyWithExtraStore(certificate, authorities, AuthorityChain.ClientAuthentication, intermediates);
#else
        verifier == "CustomRoots"
            ? AuthorityChain.VerifyWithCustomRoots(certificate, authorities, AuthorityChain.ClientAuthentication, intermediates)
            : AuthorityChain.VerifyWithExtraStore(certificate, authorities, AuthorityChain.ClientAuthentication, intermediates);
#endif

    private static X509Certificate2Collection Authorities(params X509Certificate2[] certificates) => new(certificates);

    [Theory]
    [MemberData(nameof(Verifiers))]
    public void TrustsACertificateIssuedByAnAuthority(string verifier)
    {
        Assert.Null(Verify(verifier, Certificates.Client, Authorities(Certificates.Authority)));
        Assert.Null(Verify(verifier, Certificates.Client, Authorities(Certificates.OtherAuthority, Certificates.Authority)));
        Assert.Null(Verify(verifier, Certificates.ClientOfOtherAuthority, Authorities(Certificates.OtherAuthority, Certificates.Authority)));
    }

    [Theory]
    [MemberData(nameof(Verifiers))]
    public void RefusesACertificateOfAnotherAuthorityOrSelfSigned(string verifier)
    {
        Assert.Contains("does not chain to an authority (issued by 'CN=KeyShell Other CA')", Verify(verifier, Certificates.ClientOfOtherAuthority, Authorities(Certificates.Authority)));
        Assert.Contains("does not chain to an authority (issued by 'CN=self-signed client')", Verify(verifier, Certificates.SelfSignedClient, Authorities(Certificates.Authority)));
    }

    [Theory]
    [MemberData(nameof(Verifiers))]
    public void RefusesAnExpiredCertificate(string verifier)
    {
        Assert.Contains("out of its validity period", Verify(verifier, Certificates.ExpiredClient, Authorities(Certificates.Authority)));
    }

    [Theory]
    [MemberData(nameof(Verifiers))]
    public void RefusesACertificateNotMeantForClients(string verifier)
    {
        Assert.Contains("not for client authentication", Verify(verifier, Certificates.Server, Authorities(Certificates.Authority)));
    }

    [Theory]
    [MemberData(nameof(Verifiers))]
    public void FollowsAnIntermediateTheClientSentToTheAuthority(string verifier)
    {
        using var intermediate = NewAuthority("CN=KeyShell Intermediate CA", Certificates.Authority);
        using var client = NewSigned(intermediate, "CN=deep client", ClientAuthentication);
        Assert.Null(Verify(verifier, client, Authorities(Certificates.Authority), new X509Certificate2Collection(intermediate)));
        Assert.Contains("does not chain to an authority", Verify(verifier, client, Authorities(Certificates.Authority)));
    }

    [Fact]
    public void GivesAVerdictWithTheSubjectAndTheReason()
    {
        var policy = new ClientCertificatePolicy(Authorities(Certificates.Authority));
        Assert.True(policy.Check(Certificates.Client).Trusted);
        Assert.Null(policy.Check(Certificates.Client).Reason);

        var stranger = policy.Check(Certificates.ClientOfOtherAuthority);
        Assert.False(stranger.Trusted);
        Assert.Equal("the client certificate 'CN=stranger' is refused: it does not chain to an authority (issued by 'CN=KeyShell Other CA')", stranger.Reason);

        var none = policy.Check(null);
        Assert.False(none.Trusted);
        Assert.Equal("the client presented no certificate", none.Reason);

        // A plain X509Certificate (as SslStream may hand one over) is checked the same way.
        using var plain = new X509Certificate(Certificates.Client);
        Assert.True(policy.Check(plain).Trusted);
    }

    [Fact]
    public void ReadsItsAuthoritiesFromAFileAndNeedsOne()
    {
        var path = Write(TestSupport.TempDirectory(), "ca.pem", Certificates.Authority.ExportCertificatePem());
        var policy = ClientCertificatePolicy.FromFile(path);
        Assert.Equal(Certificates.Authority.Thumbprint, Assert.Single(policy.Authorities).Thumbprint);
        Assert.Throws<ArgumentException>(() => new ClientCertificatePolicy(new X509Certificate2Collection()));
    }

    [Fact]
    public void TheCallbackReportsWhyItRefused()
    {
        var policy = new ClientCertificatePolicy(Authorities(Certificates.Authority));
        var reasons = new List<string>();
        var callback = policy.CreateValidationCallback(reasons.Add);
        Assert.True(callback(this, Certificates.Client, null, System.Net.Security.SslPolicyErrors.RemoteCertificateChainErrors));
        Assert.False(callback(this, Certificates.SelfSignedClient, null, System.Net.Security.SslPolicyErrors.None));
        Assert.False(callback(this, null, null, System.Net.Security.SslPolicyErrors.RemoteCertificateNotAvailable));
        Assert.Equal(2, reasons.Count);
        Assert.Contains("CN=self-signed client", reasons[0]);
        Assert.Equal("the client presented no certificate", reasons[1]);
    }
}

using System.Security.Cryptography.X509Certificates;
using KeyShell.Engine.Client;
using KeyShell.Engine.Security;
using static KeyShell.Engine.Tests.TestSupport;

namespace KeyShell.Engine.Tests;

/// <summary>Test-KeyServer -UseTls: the probe shakes hands before it counts a server as reachable.</summary>
public class KeyProbeTlsTests
{
    private static TestCertificates Certificates => TestCertificates.Shared;

    private static TimeSpan Timeout => TimeSpan.FromSeconds(10);

    [Fact]
    public async Task ReachesATlsServerItTrustsAndReadsTheReply()
    {
        using var server = new TlsTestServer(new TlsServerSettings(new ServerCertificate(Certificates.Server)));
        var tls = new TlsClientSettings { TrustedAuthorities = new X509Certificate2Collection(Certificates.Authority) };
        var probe = await KeyProbe.ProbeAsync("127.0.0.1", server.Port, Timeout, sendRequest: true, tls, null, CancellationToken.None);
        Assert.True(probe.Reachable, probe.Error);
        Assert.Equal("Response for the key 0 : 12", probe.Reply);
        Assert.NotNull(probe.Latency);

        var connectOnly = await KeyProbe.ProbeAsync("localhost", server.Port, Timeout, sendRequest: false, tls, null, CancellationToken.None);
        Assert.True(connectOnly.Reachable, connectOnly.Error);
    }

    [Fact]
    public async Task AnUntrustedCertificateIsAnErrorNotAResult()
    {
        using var server = new TlsTestServer(new TlsServerSettings(new ServerCertificate(Certificates.SelfSignedServer)));
        var untrusted = await Assert.ThrowsAsync<TlsCertificateUntrustedException>(() =>
            KeyProbe.ProbeAsync("127.0.0.1", server.Port, Timeout, sendRequest: true, new TlsClientSettings(), null, CancellationToken.None));
        Assert.Contains("is not trusted", untrusted.Message);

        var skipped = await KeyProbe.ProbeAsync("127.0.0.1", server.Port, Timeout, sendRequest: true, new TlsClientSettings { SkipCertificateCheck = true }, null, CancellationToken.None);
        Assert.True(skipped.Reachable, skipped.Error);
        Assert.Equal("Response for the key 0 : 12", skipped.Reply);
    }

    [Fact]
    public async Task TheTargetHostIsTheNameTheCertificateMustCarry()
    {
        using var server = new TlsTestServer(new TlsServerSettings(new ServerCertificate(Certificates.Server)));
        var tls = new TlsClientSettings { TrustedAuthorities = new X509Certificate2Collection(Certificates.Authority) };
        var untrusted = await Assert.ThrowsAsync<TlsCertificateUntrustedException>(() =>
            KeyProbe.ProbeAsync("127.0.0.1", server.Port, Timeout, sendRequest: false, tls, "keys.example.com", CancellationToken.None));
        Assert.Contains("not issued for 'keys.example.com'", untrusted.Message);
    }

    [Fact]
    public async Task PresentsAClientCertificateToAMutualTlsServer()
    {
        var settings = new TlsServerSettings(new ServerCertificate(Certificates.Server), new ClientCertificatePolicy(new X509Certificate2Collection(Certificates.Authority)));
        using var server = new TlsTestServer(settings);
        var tls = new TlsClientSettings { SkipCertificateCheck = true, ClientCertificate = Certificates.Client };
        var probe = await KeyProbe.ProbeAsync("127.0.0.1", server.Port, Timeout, sendRequest: true, tls, null, CancellationToken.None);
        Assert.True(probe.Reachable, probe.Error);
        Assert.Equal("Response for the key 0 : 12", probe.Reply);

        var refused = await KeyProbe.ProbeAsync("127.0.0.1", server.Port, Timeout, sendRequest: true, new TlsClientSettings { SkipCertificateCheck = true }, "refused.test", CancellationToken.None);
        Assert.Null(refused.Reply);
        Assert.NotNull(refused.Error); // TLS 1.2: the handshake failed; TLS 1.3: closed without a reply
        Assert.True(server.Failures.TryTake(out var failure, Bound));
        Assert.Equal(TlsFailure.Certificate, failure!.Failure);
    }

    [Fact]
    public async Task ATlsProbeOfAPlainServerIsUnreachableWithTheReason()
    {
        using var plain = StartServer(o => o.LogPath = null);
        var probe = await KeyProbe.ProbeAsync("127.0.0.1", plain.Port, TimeSpan.FromSeconds(3), sendRequest: true, new TlsClientSettings { SkipCertificateCheck = true }, null, CancellationToken.None);
        Assert.False(probe.Reachable);
        Assert.NotNull(probe.Error);
        Assert.Null(probe.Reply);
    }

    [Fact]
    public async Task APlainProbeOfATlsServerGetsTheTlsRequiredReply()
    {
        using var server = new TlsTestServer(new TlsServerSettings(new ServerCertificate(Certificates.Server)));
        var probe = await KeyProbe.ProbeAsync("127.0.0.1", server.Port, Timeout, sendRequest: true, CancellationToken.None);
        Assert.Equal("Error: TLS required", probe.Reply);
        Assert.True(server.Failures.TryTake(out var failure, Bound));
        Assert.Equal(TlsFailure.Handshake, failure!.Failure);
    }
}

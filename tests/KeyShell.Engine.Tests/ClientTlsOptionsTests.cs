using KeyShell.Engine.Client;

namespace KeyShell.Engine.Tests;

/// <summary>What the client options hand the transport for TLS.</summary>
public class ClientTlsOptionsTests
{
    [Fact]
    public void WithoutUseTlsThereAreNoTlsSettings()
    {
        Assert.Null(new KeyClientOptions { SkipCertificateCheck = true }.CreateTlsSettings());
        Assert.Null(new LoadOptions { ClientCertificate = TestCertificates.Shared.Client }.CreateTlsSettings());
    }

    [Fact]
    public void KeyClientOptionsCarryTheirTlsSettings()
    {
        var options = new KeyClientOptions { ComputerName = "keys.example.com", UseTls = true, SkipCertificateCheck = true, ClientCertificate = TestCertificates.Shared.Client, Timeout = TimeSpan.FromSeconds(3) };
        var tls = options.CreateTlsSettings()!;
        Assert.True(tls.SkipCertificateCheck);
        Assert.Same(TestCertificates.Shared.Client, tls.ClientCertificate);
        Assert.Equal(TimeSpan.FromSeconds(3), tls.HandshakeTimeout);
        Assert.Equal("keys.example.com", options.EffectiveTargetHost);
        options.TargetHost = "localhost";
        Assert.Equal("localhost", options.EffectiveTargetHost);
    }

    [Fact]
    public void LoadOptionsCarryTheirTlsSettings()
    {
        var options = new LoadOptions { UseTls = true, Timeout = TimeSpan.FromSeconds(4) };
        var tls = options.CreateTlsSettings()!;
        Assert.False(tls.SkipCertificateCheck);
        Assert.Null(tls.ClientCertificate);
        Assert.Equal(TimeSpan.FromSeconds(4), tls.HandshakeTimeout);
        Assert.Equal("127.0.0.1", options.EffectiveTargetHost);
    }
}

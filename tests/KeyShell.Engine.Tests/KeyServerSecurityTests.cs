using System.Collections.Concurrent;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using KeyShell.Engine.Security;
using KeyShell.Engine.Server;
using static KeyShell.Engine.Tests.TestSupport;

namespace KeyShell.Engine.Tests;

/// <summary>
/// What KeyServer holds for an exposed server (its TLS settings, address rules) and how it records a refused
/// peer. The transport that calls these is tested once it speaks TLS (tests/KeyShell.Tests/Tls.Tests.ps1).
/// </summary>
public class KeyServerSecurityTests
{
    private static TestCertificates Certificates => TestCertificates.Shared;

    private static ClientCertificatePolicy Policy() => new(new X509Certificate2Collection(Certificates.Authority));

    [Fact]
    public void APlainServerHasNoTlsAndNoRules()
    {
        using var server = StartServer(o => o.LogPath = null);
        Assert.False(server.UsesTls);
        Assert.Null(server.Certificate);
        Assert.False(server.RequireClientCertificate);
        Assert.Null(server.AllowedAddress);
        Assert.Null(server.Tls);
        Assert.Null(server.AllowedAddresses);
    }

    [Fact]
    public void AServerCarriesItsTlsSettingsAndRules()
    {
        using var server = StartServer(o =>
        {
            o.LogPath = null;
            o.IdleTimeout = TimeSpan.FromSeconds(7);
            o.Certificate = new ServerCertificate(Certificates.Server);
            o.RequireClientCertificate = true;
            o.ClientCertificatePolicy = Policy();
            o.AllowedAddresses = AddressRules.Parse(new[] { "127.0.0.0/8", "::ffff:10.0.0.0/104" });
        });
        Assert.True(server.UsesTls);
        Assert.Equal(Certificates.Server.Thumbprint, server.Certificate!.Thumbprint);
        Assert.True(server.RequireClientCertificate);
        Assert.Equal(new[] { "127.0.0.0/8", "10.0.0.0/8" }, server.AllowedAddress);
        Assert.True(server.AllowedAddresses!.Allows(IPAddress.Loopback));
        Assert.NotNull(server.Tls!.ClientCertificatePolicy);
        Assert.Equal(TimeSpan.FromSeconds(7), server.Tls.HandshakeTimeout);
    }

    [Fact]
    public void TheHandshakeIsBoundedByTheIdleTimeoutOrAMinuteWhenThatIsOff()
    {
        using var server = StartServer(o =>
        {
            o.LogPath = null;
            o.IdleTimeout = TimeSpan.Zero;
            o.Certificate = new ServerCertificate(Certificates.Server);
        });
        Assert.Equal(TimeSpan.FromSeconds(60), server.Tls!.HandshakeTimeout);
        Assert.False(server.Tls.RequireClientCertificate);
    }

    [Theory]
    [InlineData(true, false, true, "ClientCertificatePolicy")]
    [InlineData(false, true, true, "RequireClientCertificate")]
    [InlineData(true, true, false, "Certificate")]
    public void MutualTlsNeedsAllItsParts(bool require, bool policy, bool certificate, string missing)
    {
        var error = Assert.Throws<ArgumentException>(() => StartServer(o =>
        {
            o.LogPath = null;
            o.RequireClientCertificate = require;
            o.ClientCertificatePolicy = policy ? Policy() : null;
            o.Certificate = certificate ? new ServerCertificate(Certificates.Server) : null;
        }));
        Assert.Equal(missing, error.ParamName);
    }

    [Fact]
    public void APlainServerCannotBeGivenACertificate()
    {
        using var server = StartServer(o => o.LogPath = null);
        var error = Assert.Throws<KeyServerException>(() => server.SetCertificate(new ServerCertificate(Certificates.OtherServer)));
        Assert.Equal(KeyServerErrorKind.TlsNotEnabled, error.Kind);
        Assert.Same(server, error.Target);
        Assert.Contains($"The server on port {server.Port} was started without TLS", error.Message);
        Assert.False(server.UsesTls);
    }

    [Fact]
    public async Task NewHandshakesGetTheCertificateSetOnARunningServer()
    {
        using var server = StartServer(o =>
        {
            o.LogPath = null;
            o.Certificate = new ServerCertificate(Certificates.Server);
        });
        server.SetCertificate(new ServerCertificate(Certificates.OtherServer));
        Assert.Equal(Certificates.OtherServer.Thumbprint, server.Certificate!.Thumbprint);

        // What the transport will do with server.Tls: the handshake presents the new certificate.
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        using var client = new TcpClient();
        var accepted = listener.AcceptSocketAsync();
        await client.ConnectAsync(IPAddress.Loopback, ((IPEndPoint)listener.LocalEndpoint).Port);
        using var serverStream = new NetworkStream(await accepted, ownsSocket: true);
        var serverSide = TlsHandshake.AuthenticateAsServerAsync(serverStream, server.Tls!, CancellationToken.None);
        using var clientSide = await TlsHandshake.AuthenticateAsClientAsync(client.GetStream(), new TlsClientSettings { SkipCertificateCheck = true }, "localhost", CancellationToken.None).WaitAsync(Bound);
        using var serverTls = await serverSide.WaitAsync(Bound);
        Assert.Equal(Certificates.OtherServer.Thumbprint, new X509Certificate2(clientSide.RemoteCertificate!).Thumbprint);
    }

    [Fact]
    public void ARefusedPeerIsCountedLoggedAndAnnounced()
    {
        var log = Path.Combine(TempDirectory(), "refused.txt");
        var server = StartServer(o => o.LogPath = log);
        var refusals = new ConcurrentQueue<KeyServerEventArgs>();
        server.ClientRefused += (_, e) => refusals.Enqueue(e);
        try
        {
            server.Events.Refused(ClientRefusal.Address, "10.1.2.3:4567", null);
            server.Events.Refused(ClientRefusal.Certificate, "127.0.0.1:5000", "the client presented no certificate");
            server.Events.Refused(ClientRefusal.Handshake, "127.0.0.1:5001", "no handshake in time");
            Assert.Equal(3, server.Rejected);
            Assert.Equal(0, server.Connections);
        }
        finally
        {
            server.Stop();
        }

        Assert.Equal(
            new[] { "SYSTEM: Server launched", "SYSTEM: Client refused (address)", "SYSTEM: Client refused (certificate)", "SYSTEM: Client refused (handshake)", "SYSTEM: Server stopped" },
            LogLines(log));
        Assert.Equal(new[] { "address", "certificate: the client presented no certificate", "handshake: no handshake in time" }, refusals.Select(e => e.Reason));
        Assert.Equal(new[] { "10.1.2.3:4567", "127.0.0.1:5000", "127.0.0.1:5001" }, refusals.Select(e => e.RemoteEndPoint));
    }

    [Fact]
    public void ARefusalCountsInTheMeterByItsReason()
    {
        using var server = StartServer(o => o.LogPath = null);
        using var meter = new MeterCollector("KeyShell.Server", server.Port);
        server.Events.Refused(ClientRefusal.Address, "10.1.2.3:4567", null);
        server.Events.Refused(ClientRefusal.Certificate, "127.0.0.1:5000", "no certificate");
        server.Events.Refused(ClientRefusal.Handshake, "127.0.0.1:5001", "not TLS");
        server.Events.Refused(ClientRefusal.Handshake, "127.0.0.1:5002", "not TLS");
        Assert.Equal(1, meter.Sum("keyshell.rejected_connections", ("error.type", "address_not_allowed")));
        Assert.Equal(1, meter.Sum("keyshell.rejected_connections", ("error.type", "tls_client_certificate_refused")));
        Assert.Equal(2, meter.Sum("keyshell.rejected_connections", ("error.type", "tls_handshake_failed")));
        Assert.Equal(server.Rejected, meter.Sum("keyshell.rejected_connections"));
    }

    [Fact]
    public void ARefusalSubscriberThatThrowsDoesNotStopTheServer()
    {
        using var server = StartServer(o => o.LogPath = null);
        server.ClientRefused += (_, _) => throw new InvalidOperationException("a subscriber's bug");
        server.Events.Refused(ClientRefusal.Address, null, null);
        Assert.Equal(1, server.Rejected);
        Assert.Equal(1, server.InternalErrors);
        using var client = Connect(server.Port);
        Send(client, "1 1\n");
        Assert.Equal(Reply(1), ReadLines(client, 1).Single());
    }
}

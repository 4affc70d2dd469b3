using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using KeyShell.Engine.Security;
using static KeyShell.Engine.Tests.TestCertificates;

namespace KeyShell.Engine.Tests;

/// <summary>
/// The TLS handshake helpers over a real loopback connection (a listener on port 0, a NetworkStream on each
/// side), without a KeyServer: what the transport's stream driver will call.
/// </summary>
public class TlsHandshakeTests
{
    private static readonly TimeSpan Bound = TestSupport.Bound;

    private static TestCertificates Certificates => Shared;

    internal static TlsServerSettings ServerSettings(X509Certificate2? certificate = null, bool mutual = false) =>
        new(new ServerCertificate(certificate ?? Certificates.Server), mutual ? new ClientCertificatePolicy(new X509Certificate2Collection(Certificates.Authority)) : null);

    /// <summary>Trusts the test authority (the machine does not), so the server's certificate is checked for real.</summary>
    internal static TlsClientSettings TrustingClient(X509Certificate2? clientCertificate = null) =>
        new() { TrustedAuthorities = new X509Certificate2Collection(Certificates.Authority), ClientCertificate = clientCertificate };

    internal static async Task<T> Within<T>(Task<T> task)
    {
        var finished = await Task.WhenAny(task, Task.Delay(Bound));
        Assert.True(finished == task, $"not finished within {Bound}");
        return await task;
    }

    private static async Task<TException> ThrowsWithin<TException>(Task task)
        where TException : Exception
    {
        var finished = await Task.WhenAny(task, Task.Delay(Bound));
        Assert.True(finished == task, $"not finished within {Bound}");
        return await Assert.ThrowsAnyAsync<TException>(() => task);
    }

    /// <summary>Both handshakes at once; returns both sides' outcomes (a stream, or the exception).</summary>
    internal static async Task<(Task<SslStream> Server, Task<SslStream> Client)> Handshake(LoopbackPair pair, TlsServerSettings server, TlsClientSettings client, string targetHost = "localhost")
    {
        var serverSide = TlsHandshake.AuthenticateAsServerAsync(pair.Server, server, CancellationToken.None);
        var clientSide = TlsHandshake.AuthenticateAsClientAsync(pair.Client, client, targetHost, CancellationToken.None);
        var both = Task.WhenAll(serverSide, clientSide);
        await Task.WhenAny(both, Task.Delay(Bound));
        Assert.True(serverSide.IsCompleted && clientSide.IsCompleted, $"the handshakes did not end within {Bound}");
        return (serverSide, clientSide);
    }

    internal static async Task AssertTalks(SslStream server, SslStream client)
    {
        await client.WriteAsync(Encoding.ASCII.GetBytes("1 7\n"));
        var buffer = new byte[16];
        var read = await Within(server.ReadAsync(buffer).AsTask());
        Assert.Equal("1 7\n", Encoding.ASCII.GetString(buffer, 0, read));
        await server.WriteAsync(Encoding.ASCII.GetBytes("ok\n"));
        read = await Within(client.ReadAsync(buffer).AsTask());
        Assert.Equal("ok\n", Encoding.ASCII.GetString(buffer, 0, read));
    }

    /// <summary>
    /// One side, after the other refused it: it must end (an error, or the end of the stream), never hang.
    /// Under TLS 1.3 a client finishes its handshake before the server has judged its certificate (and a
    /// server before the client has judged its): the refusal then arrives with the first read.
    /// </summary>
    private static async Task AssertTurnedAway(Task<SslStream> side)
    {
        if (side.IsFaulted)
        {
            return; // refused inside the handshake
        }

        using var stream = side.Result;
        try
        {
            var read = await Within(stream.ReadAsync(new byte[16]).AsTask());
            Assert.Equal(0, read);
        }
        catch (Exception e) when (e is IOException || e is AuthenticationException)
        {
            // Refused with an alert, or reset.
        }
    }

    [Theory]
    [InlineData(SslProtocols.Tls12)]
    [InlineData(SslProtocols.Tls13)]
    public async Task ServesTls12AndTls13WithACertificateTheClientTrusts(SslProtocols protocol)
    {
        using var pair = await LoopbackPair.ConnectAsync();
        var client = TrustingClient();
        client.Protocols = protocol;
        var (serverSide, clientSide) = await Handshake(pair, ServerSettings(), client);
        using var server = await serverSide;
        using var clientStream = await clientSide;
        Assert.Equal(protocol, server.SslProtocol);
        Assert.Equal(protocol, clientStream.SslProtocol);
        Assert.True(server.IsEncrypted && server.IsAuthenticated);
        Assert.Equal(Certificates.Server.Thumbprint, new X509Certificate2(clientStream.RemoteCertificate!).Thumbprint);
        await AssertTalks(server, clientStream);
    }

    [Fact]
    public async Task OffersOnlyTls12AndTls13()
    {
        Assert.Equal(SslProtocols.Tls12 | SslProtocols.Tls13, TlsHandshake.DefaultProtocols);
        Assert.Equal(TlsHandshake.DefaultProtocols, ServerSettings().Protocols);
        Assert.Equal(TlsHandshake.DefaultProtocols, new TlsClientSettings().Protocols);

        // Both sides at their defaults settle on the newest.
        using var pair = await LoopbackPair.ConnectAsync();
        var (serverSide, clientSide) = await Handshake(pair, ServerSettings(), TrustingClient());
        using var server = await serverSide;
        using var client = await clientSide;
        Assert.Equal(SslProtocols.Tls13, server.SslProtocol);
    }

    [Theory]
    [InlineData("127.0.0.1")]
    [InlineData("::1")]
    public async Task ChecksTheServersNameAgainstItsIPAddresses(string address)
    {
        using var pair = await LoopbackPair.ConnectAsync(IPAddress.Parse(address));
        var (serverSide, clientSide) = await Handshake(pair, ServerSettings(), TrustingClient(), address);
        using var server = await serverSide;
        using var client = await clientSide;
        await AssertTalks(server, client);
    }

    [Fact]
    public async Task ServesAClientWhoseCertificateChainsToTheAuthority()
    {
        using var pair = await LoopbackPair.ConnectAsync();
        var (serverSide, clientSide) = await Handshake(pair, ServerSettings(mutual: true), TrustingClient(Certificates.Client));
        using var server = await serverSide;
        using var client = await clientSide;
        Assert.Equal(Certificates.Client.Thumbprint, new X509Certificate2(server.RemoteCertificate!).Thumbprint);
        await AssertTalks(server, client);
    }

    [Fact]
    public async Task ServesAClientWithACertificateAgainAndAgain()
    {
        // Later connections may resume the first one's TLS session: the client's certificate still counts.
        var settings = ServerSettings(mutual: true);
        var client = TrustingClient(Certificates.Client);
        for (var i = 0; i < 4; i++)
        {
            using var pair = await LoopbackPair.ConnectAsync();
            var (serverSide, clientSide) = await Handshake(pair, settings, client);
            using var server = await serverSide;
            using var clientStream = await clientSide;
            await AssertTalks(server, clientStream);
        }
    }

    [Theory]
    [InlineData("other authority", "does not chain to an authority (issued by 'CN=KeyShell Other CA')")]
    [InlineData("self-signed", "does not chain to an authority (issued by 'CN=self-signed client')")]
    [InlineData("none", "the client presented no certificate")]
    public async Task RefusesAClientWithoutACertificateOfTheAuthority(string which, string why)
    {
        var certificate = which switch
        {
            "other authority" => Certificates.ClientOfOtherAuthority,
            "self-signed" => Certificates.SelfSignedClient,
            _ => null,
        };
        // A name of its own: the client could otherwise resume a TLS session of another test, and a resumed
        // session carries no certificate (refused all the same, but as "no certificate").
        var client = new TlsClientSettings { SkipCertificateCheck = true, ClientCertificate = certificate };
        using var pair = await LoopbackPair.ConnectAsync();
        var (serverSide, clientSide) = await Handshake(pair, ServerSettings(mutual: true), client, $"refused-{which.Replace(' ', '-')}.test");
        var refused = await Assert.ThrowsAsync<TlsHandshakeException>(() => serverSide);
        Assert.Equal(TlsFailure.Certificate, refused.Failure);
        Assert.Equal("certificate", refused.Reason);
        Assert.False(refused.TimedOut);
        Assert.Contains(why, refused.Message);
        await AssertTurnedAway(clientSide);
    }

    [Fact]
    public async Task WithoutMutualTlsAClientCertificateIsNotJudged()
    {
        using var pair = await LoopbackPair.ConnectAsync();
        var (serverSide, clientSide) = await Handshake(pair, ServerSettings(), TrustingClient(Certificates.SelfSignedClient));
        using var server = await serverSide;
        using var client = await clientSide;
        await AssertTalks(server, client);
    }

    [Theory]
    [InlineData("1 1\n", "'1' (0x31)")]
    [InlineData("1 1", "'1' (0x31)")]
    [InlineData("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n", "'G' (0x47)")]
    [InlineData("\x05\x01\x00", "0x05")]
    public async Task TellsAPlainTextClientAtOnceThatThePortSpeaksTls(string request, string firstByte)
    {
        using var pair = await LoopbackPair.ConnectAsync();
        var settings = ServerSettings();
        settings.HandshakeTimeout = TimeSpan.Zero; // no timeout: the refusal must not wait for one
        var serverSide = TlsHandshake.AuthenticateAsServerAsync(pair.Server, settings, CancellationToken.None);
        await pair.Client.WriteAsync(Encoding.Latin1.GetBytes(request));

        var refused = await ThrowsWithin<TlsHandshakeException>(serverSide);
        Assert.Equal(TlsFailure.Handshake, refused.Failure);
        Assert.Equal("handshake", refused.Reason);
        Assert.False(refused.TimedOut);
        Assert.Contains($"its first byte is {firstByte}", refused.Message);

        // The plain-text client reads why, then the end of the connection.
        var reply = Encoding.ASCII.GetString(await Within(ReadToEndAsync(pair.Client)));
        Assert.Equal("Error: TLS required\n", reply);
        Assert.Throws<ObjectDisposedException>(() => pair.Server.Write(new byte[1]));
    }

    [Theory]
    [InlineData("\x16\x03\x01\x00\x05\xff\xff\xff\xff\xff")] // a handshake record holding no handshake
    [InlineData("\x16\x03\x03\xff\xff")] // a record that claims 65,535 bytes, then the end
    public async Task RefusesGarbageThatStartsLikeTls(string bytes)
    {
        using var pair = await LoopbackPair.ConnectAsync();
        var serverSide = TlsHandshake.AuthenticateAsServerAsync(pair.Server, ServerSettings(), CancellationToken.None);
        await pair.Client.WriteAsync(Encoding.Latin1.GetBytes(bytes));
        pair.ClientSocket.Shutdown(SocketShutdown.Send); // and then the end: nothing more will come

        var refused = await ThrowsWithin<TlsHandshakeException>(serverSide);
        Assert.Equal(TlsFailure.Handshake, refused.Failure);
        Assert.False(refused.TimedOut);
        Assert.StartsWith("The TLS handshake failed", refused.Message);
        _ = await Within(ReadToEndAsync(pair.Client)); // the server closed (an alert may come first)
        Assert.Throws<ObjectDisposedException>(() => pair.Server.Write(new byte[1]));
    }

    [Fact]
    public async Task RefusesAPeerThatClosesDuringTheHandshake()
    {
        using var pair = await LoopbackPair.ConnectAsync();
        var serverSide = TlsHandshake.AuthenticateAsServerAsync(pair.Server, ServerSettings(), CancellationToken.None);
        pair.ClientSocket.Close();
        var refused = await ThrowsWithin<TlsHandshakeException>(serverSide);
        Assert.Equal(TlsFailure.Handshake, refused.Failure);
        Assert.False(refused.TimedOut);
    }

    [Fact]
    public async Task GivesUpOnAStalledHandshakeAfterTheTimeout()
    {
        using var pair = await LoopbackPair.ConnectAsync();
        var settings = ServerSettings();
        settings.HandshakeTimeout = TimeSpan.FromMilliseconds(200);

        // The start of a ClientHello, then nothing: the server waits for the rest until the timeout.
        await pair.Client.WriteAsync(new byte[] { 0x16, 0x03, 0x01, 0x00, 0x40, 0x01 });
        var refused = await ThrowsWithin<TlsHandshakeException>(TlsHandshake.AuthenticateAsServerAsync(pair.Server, settings, CancellationToken.None));
        Assert.True(refused.TimedOut);
        Assert.Equal(TlsFailure.Handshake, refused.Failure);
        Assert.Contains("did not complete the TLS handshake within 0.2 s", refused.Message);
        Assert.Throws<ObjectDisposedException>(() => pair.Server.Write(new byte[1]));
    }

    [Fact]
    public async Task TheCallersTokenCancelsAHandshakeAsCancelledNotAsAFailure()
    {
        using var pair = await LoopbackPair.ConnectAsync();
        using var cancel = new CancellationTokenSource();
        var settings = ServerSettings();
        settings.HandshakeTimeout = TimeSpan.Zero; // none: only the token ends it
        var serverSide = TlsHandshake.AuthenticateAsServerAsync(pair.Server, settings, cancel.Token);
        await Task.Delay(50);
        Assert.False(serverSide.IsCompleted, "a silent peer must keep the handshake waiting");
        cancel.Cancel();
        var cancelled = await ThrowsWithin<OperationCanceledException>(serverSide);
        Assert.IsNotType<TlsHandshakeException>(cancelled);
        Assert.Throws<ObjectDisposedException>(() => pair.Server.Write(new byte[1]));
    }

    [Fact]
    public async Task TheClientRefusesAServerCertificateItDoesNotTrust()
    {
        using var pair = await LoopbackPair.ConnectAsync();
        var (serverSide, clientSide) = await Handshake(pair, ServerSettings(Certificates.SelfSignedServer), new TlsClientSettings());
        var untrusted = await Assert.ThrowsAsync<TlsCertificateUntrustedException>(() => clientSide);
        Assert.True(untrusted.PolicyErrors.HasFlag(SslPolicyErrors.RemoteCertificateChainErrors));
        Assert.Equal("CN=localhost", untrusted.Subject);
        Assert.Equal(TlsFailure.Certificate, untrusted.Failure);
        Assert.Contains("The server's certificate 'CN=localhost' is not trusted: its authority is not trusted on this machine", untrusted.Message);
        Assert.Contains("-SkipCertificateCheck", untrusted.Message);

        // The server sees the client walk away: in the handshake, or (TLS 1.3) at its first read.
        if (serverSide.IsFaulted)
        {
            Assert.Equal(TlsFailure.Handshake, Assert.IsType<TlsHandshakeException>(serverSide.Exception!.InnerException).Failure);
        }

        await AssertTurnedAway(serverSide);
    }

    [Fact]
    public async Task TheClientRefusesACertificateOfAnotherAuthorityOrAnotherName()
    {
        using (var pair = await LoopbackPair.ConnectAsync())
        {
            var client = new TlsClientSettings { TrustedAuthorities = new X509Certificate2Collection(Certificates.OtherAuthority) };
            var (_, clientSide) = await Handshake(pair, ServerSettings(), client);
            var untrusted = await Assert.ThrowsAsync<TlsCertificateUntrustedException>(() => clientSide);
            Assert.Contains("does not chain to an authority (issued by 'CN=KeyShell Test CA')", untrusted.Message);
        }

        using (var pair = await LoopbackPair.ConnectAsync())
        {
            var (_, clientSide) = await Handshake(pair, ServerSettings(), TrustingClient(), targetHost: "keys.example.com");
            var untrusted = await Assert.ThrowsAsync<TlsCertificateUntrustedException>(() => clientSide);
            Assert.Equal(SslPolicyErrors.RemoteCertificateNameMismatch, untrusted.PolicyErrors);
            Assert.Contains("it is not issued for 'keys.example.com'", untrusted.Message);
        }
    }

    [Fact]
    public async Task SkipCertificateCheckAcceptsAnyServerCertificate()
    {
        using var pair = await LoopbackPair.ConnectAsync();
        var (serverSide, clientSide) = await Handshake(pair, ServerSettings(Certificates.SelfSignedServer), new TlsClientSettings { SkipCertificateCheck = true }, "keys.example.com");
        using var server = await serverSide;
        using var client = await clientSide;
        await AssertTalks(server, client);
    }

    [Fact]
    public async Task TheClientGivesUpOnAServerThatNeverAnswers()
    {
        using var pair = await LoopbackPair.ConnectAsync();
        var settings = new TlsClientSettings { SkipCertificateCheck = true, HandshakeTimeout = TimeSpan.FromMilliseconds(200) };
        var failed = await ThrowsWithin<TlsHandshakeException>(TlsHandshake.AuthenticateAsClientAsync(pair.Client, settings, "localhost", CancellationToken.None));
        Assert.True(failed.TimedOut);
        Assert.Contains("did not complete the TLS handshake within 0.2 s", failed.Message);
    }

    [Fact]
    public async Task TheClientSaysSoWhenThePortDoesNotSpeakTls()
    {
        using var pair = await LoopbackPair.ConnectAsync();
        var clientSide = TlsHandshake.AuthenticateAsClientAsync(pair.Client, new TlsClientSettings { SkipCertificateCheck = true }, "localhost", CancellationToken.None);

        // A plain KeyShell server answers the ClientHello as a bad request and closes.
        var hello = new byte[512];
        _ = await Within(pair.Server.ReadAsync(hello).AsTask());
        await pair.Server.WriteAsync(Encoding.ASCII.GetBytes("Error: malformed request, expected '<client> <key>'\n"));
        pair.ServerSocket.Shutdown(SocketShutdown.Both);
        var failed = await ThrowsWithin<TlsHandshakeException>(clientSide);
        Assert.IsNotType<TlsCertificateUntrustedException>(failed);
        Assert.Equal(TlsFailure.Handshake, failed.Failure);
        Assert.Contains("is the port TLS?", failed.Message);
    }

    [Fact]
    public async Task NewHandshakesPresentAReplacedCertificate()
    {
        var settings = ServerSettings();
        async Task<string> Presented()
        {
            using var pair = await LoopbackPair.ConnectAsync();
            var (serverSide, clientSide) = await Handshake(pair, settings, TrustingClient());
            using var server = await serverSide;
            using var client = await clientSide;
            return new X509Certificate2(client.RemoteCertificate!).Thumbprint;
        }

        Assert.Equal(Certificates.Server.Thumbprint, await Presented());
        settings.ReplaceCertificate(new ServerCertificate(Certificates.OtherServer));
        Assert.Equal(Certificates.OtherServer.Thumbprint, await Presented());
    }

    [Fact]
    public async Task ACertificateAfterAPkcs12RoundTripServes()
    {
        // The Windows path for PEM keys, exercised here.
        using var copy = CertificateLoader.RoundTripThroughPkcs12(Certificates.Server);
        using var pair = await LoopbackPair.ConnectAsync();
        var (serverSide, clientSide) = await Handshake(pair, new TlsServerSettings(new ServerCertificate(copy)), TrustingClient());
        using var server = await serverSide;
        using var client = await clientSide;
        await AssertTalks(server, client);
    }

    private static async Task<byte[]> ReadToEndAsync(Stream stream)
    {
        var received = new MemoryStream();
        var buffer = new byte[256];
        try
        {
            int read;
            while ((read = await stream.ReadAsync(buffer)) > 0)
            {
                received.Write(buffer, 0, read);
            }
        }
        catch (IOException)
        {
            // A reset after what was sent still leaves what was read.
        }

        return received.ToArray();
    }
}

public class TlsDetectionTests
{
    [Theory]
    [InlineData(new byte[] { 0x16 }, true)]
    [InlineData(new byte[] { 0x16, 0x03, 0x01, 0x02, 0x00 }, true)]
    [InlineData(new byte[] { 0x16, 0x03 }, true)]
    [InlineData(new byte[] { 0x16, 0x02 }, false)]
    [InlineData(new byte[] { (byte)'1', (byte)' ', (byte)'7' }, false)]
    [InlineData(new byte[] { 0x80, 0x2e, 0x01 }, false)] // an SSL 2 hello: no TLS 1.2/1.3 client sends one
    [InlineData(new byte[0], false)]
    public void KnowsATlsClientHelloByItsFirstBytes(byte[] bytes, bool tls) =>
        Assert.Equal(tls, TlsDetection.StartsWithTlsHandshake(bytes));

    [Fact]
    public void RealClientHellosAreRecognised()
    {
        // What .NET's own client sends first, captured over a loopback pair.
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        using var client = new System.Net.Sockets.TcpClient();
        client.Connect(System.Net.IPAddress.Loopback, ((System.Net.IPEndPoint)listener.LocalEndpoint).Port);
        using var accepted = listener.AcceptSocket();
        using var ssl = new System.Net.Security.SslStream(client.GetStream());
        _ = ssl.AuthenticateAsClientAsync("localhost");
        var hello = new byte[5];
        accepted.ReceiveTimeout = (int)TestSupport.Bound.TotalMilliseconds;
        var read = accepted.Receive(hello);
        Assert.True(TlsDetection.StartsWithTlsHandshake(hello.AsSpan(0, read)));
    }
}

using System;
using System.Collections.Generic;
using System.ComponentModel;
using System.IO;
using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using KeyShell.Engine.Protocol;

namespace KeyShell.Engine.Security;

/// <summary>
/// TLS handshakes over any stream (a NetworkStream, or whatever a transport hands over), for both sides.
/// Each returns the authenticated SslStream, which owns the inner stream from then on. A failed handshake
/// closes the SslStream and the inner stream, then throws <see cref="TlsHandshakeException"/> saying why
/// (<see cref="TlsHandshakeException.Failure"/>: certificate or handshake; <see cref="TlsHandshakeException.TimedOut"/>),
/// or <see cref="TlsCertificateUntrustedException"/> on the client side for a server certificate it does not
/// trust. The caller's token cancelling throws OperationCanceledException instead.
/// </summary>
public static class TlsHandshake
{
    /// <summary>TLS 1.2 and 1.3 (1.3 spelled as its value: netstandard2.0 does not name it).</summary>
    public const SslProtocols DefaultProtocols = SslProtocols.Tls12 | (SslProtocols)12288;

    private static readonly byte[] TlsRequiredReply = Encoding.ASCII.GetBytes(Replies.TlsRequired + "\n");

    private static readonly RemoteCertificateValidationCallback AcceptAny = (_, _, _, _) => true;

    /// <summary>
    /// The server's side. Presents <see cref="TlsServerSettings.Certificate"/> as it is when the handshake
    /// starts; asks for and checks a client certificate when the settings require one. The handshake is bounded by
    /// <see cref="TlsServerSettings.HandshakeTimeout"/> (then TimedOut) and by <paramref name="cancellationToken"/>.
    /// A peer whose first byte is not a TLS record (plain text, an old client) is answered
    /// <c>Error: TLS required</c> and refused at once (failure: handshake), without waiting for the timeout.
    /// </summary>
    public static async Task<SslStream> AuthenticateAsServerAsync(Stream inner, TlsServerSettings settings, CancellationToken cancellationToken)
    {
        if (inner is null)
        {
            throw new ArgumentNullException(nameof(inner));
        }

        if (settings is null)
        {
            throw new ArgumentNullException(nameof(settings));
        }

        var certificate = settings.Certificate;
        var policy = settings.ClientCertificatePolicy;
        string? refusal = null;
        SslStream? ssl = null;
        using var deadline = Deadline(settings.HandshakeTimeout, cancellationToken);
        try
        {
            var first = await ReadFirstByteAsync(inner, deadline.Token).ConfigureAwait(false);
            if (first != TlsDetection.HandshakeRecord)
            {
                throw await RefuseNonTlsAsync(inner, first).ConfigureAwait(false);
            }

            // Without mutual TLS a client certificate nobody asked for is not judged (AcceptAny); with it, the policy judges.
            var validate = policy?.CreateValidationCallback(reason => refusal = reason) ?? AcceptAny;
            ssl = new SslStream(new PrefixedStream(inner, TlsDetection.HandshakeRecord), leaveInnerStreamOpen: false, validate);
            await TlsPlatform.AuthenticateAsServerAsync(ssl, certificate.Context, policy is not null, settings.Protocols, deadline.Token).ConfigureAwait(false);
            return ssl;
        }
        catch (TlsHandshakeException)
        {
            inner.Dispose();
            throw;
        }
        catch (Exception e) when (IsHandshakeFailure(e))
        {
            ssl?.Dispose();
            inner.Dispose();
            cancellationToken.ThrowIfCancellationRequested();
            if (deadline.IsCancellationRequested)
            {
                throw new TlsHandshakeException(TlsFailure.Handshake, $"The client did not complete the TLS handshake within {settings.HandshakeTimeout.TotalSeconds:0.###} s.", timedOut: true, e);
            }

            if (refusal is not null)
            {
                throw new TlsHandshakeException(TlsFailure.Certificate, refusal, inner: e);
            }

            throw new TlsHandshakeException(TlsFailure.Handshake, "The TLS handshake failed (not a TLS client, or a protocol error): " + Describe(e), inner: e);
        }
    }

    /// <summary>
    /// The client's side. The server's certificate must be trusted and issued for <paramref name="targetHost"/>
    /// (a host name or an IP address) unless <see cref="TlsClientSettings.SkipCertificateCheck"/>; when it is
    /// not, this throws <see cref="TlsCertificateUntrustedException"/>. <see cref="TlsClientSettings.ClientCertificate"/>
    /// is presented when the server asks for one.
    /// </summary>
    public static async Task<SslStream> AuthenticateAsClientAsync(Stream inner, TlsClientSettings settings, string targetHost, CancellationToken cancellationToken)
    {
        if (inner is null)
        {
            throw new ArgumentNullException(nameof(inner));
        }

        if (settings is null)
        {
            throw new ArgumentNullException(nameof(settings));
        }

        if (string.IsNullOrEmpty(targetHost))
        {
            throw new ArgumentException("The target host is needed to check the server's certificate.", nameof(targetHost));
        }

        TlsCertificateUntrustedException? untrusted = null;
        bool Validate(object sender, X509Certificate? certificate, X509Chain? chain, SslPolicyErrors errors)
        {
            untrusted = settings.SkipCertificateCheck ? null : CheckServerCertificate(settings, targetHost, certificate, chain, errors);
            return untrusted is null;
        }

        var clientCertificate = settings.ClientCertificate;
        var ssl = new SslStream(inner, leaveInnerStreamOpen: false, Validate, (_, _, _, _, _) => clientCertificate!);
        var certificates = clientCertificate is null ? null : new X509CertificateCollection { clientCertificate };
        using var deadline = Deadline(settings.HandshakeTimeout, cancellationToken);
        try
        {
            await TlsPlatform.AuthenticateAsClientAsync(ssl, targetHost, certificates, settings.Protocols, deadline.Token).ConfigureAwait(false);
            return ssl;
        }
        catch (Exception e) when (IsHandshakeFailure(e))
        {
            ssl.Dispose();
            cancellationToken.ThrowIfCancellationRequested();
            if (untrusted is not null)
            {
                throw untrusted;
            }

            if (deadline.IsCancellationRequested)
            {
                throw new TlsHandshakeException(TlsFailure.Handshake, $"The server at '{targetHost}' did not complete the TLS handshake within {settings.HandshakeTimeout.TotalSeconds:0.###} s.", timedOut: true, e);
            }

            throw new TlsHandshakeException(TlsFailure.Handshake, $"The TLS handshake with '{targetHost}' failed (is the port TLS? does it want a client certificate?): " + Describe(e), inner: e);
        }
    }

    /// <summary>Null when the server's certificate is acceptable; otherwise the exception that says why not.</summary>
    private static TlsCertificateUntrustedException? CheckServerCertificate(TlsClientSettings settings, string targetHost, X509Certificate? certificate, X509Chain? chain, SslPolicyErrors errors)
    {
        var subject = certificate?.Subject;
        var reasons = new List<string>();
        if ((errors & SslPolicyErrors.RemoteCertificateNotAvailable) != 0 || certificate is null)
        {
            reasons.Add("the server sent no certificate");
        }
        else
        {
            if ((errors & SslPolicyErrors.RemoteCertificateNameMismatch) != 0)
            {
                reasons.Add($"it is not issued for '{targetHost}'");
            }

            if (settings.TrustedAuthorities is { } authorities)
            {
                using var certificate2 = new X509Certificate2(certificate);
                var reason = AuthorityChain.Verify(certificate2, authorities, AuthorityChain.ServerAuthentication, ClientCertificatePolicy.Presented(chain));
                if (reason is not null)
                {
                    reasons.Add(reason);
                    errors |= SslPolicyErrors.RemoteCertificateChainErrors;
                }
                else
                {
                    errors &= ~SslPolicyErrors.RemoteCertificateChainErrors;
                }
            }
            else if ((errors & SslPolicyErrors.RemoteCertificateChainErrors) != 0)
            {
                reasons.Add(DescribeChain(chain));
            }
        }

        if (errors == SslPolicyErrors.None && reasons.Count == 0)
        {
            return null;
        }

        return new TlsCertificateUntrustedException(
            $"The server's certificate{(subject is null ? string.Empty : $" '{subject}'")} is not trusted: {string.Join("; ", reasons)}. " +
            "Trust its authority on this machine, or, for a test server, use -SkipCertificateCheck.",
            errors,
            subject);
    }

    private static string DescribeChain(X509Chain? chain)
    {
        var statuses = new List<string>();
        foreach (var status in chain?.ChainStatus ?? Array.Empty<X509ChainStatus>())
        {
            statuses.Add(status.Status switch
            {
                X509ChainStatusFlags.UntrustedRoot => "its authority is not trusted on this machine (self-signed, or a private authority)",
                X509ChainStatusFlags.PartialChain => "its issuer is not known on this machine",
                X509ChainStatusFlags.NotTimeValid => "it is expired or not yet valid",
                _ => $"{status.Status}: {status.StatusInformation.Trim()}",
            });
        }

        return statuses.Count == 0 ? "its chain does not lead to a trusted authority" : string.Join("; ", statuses);
    }

    /// <summary>The connection's first byte, or -1 when the peer closed first. Closing the stream ends the wait
    /// (on .NET Framework a NetworkStream read ignores the token).</summary>
    private static async Task<int> ReadFirstByteAsync(Stream inner, CancellationToken cancellationToken)
    {
        var buffer = new byte[1];
        using (cancellationToken.Register(static state => ((Stream)state!).Dispose(), inner))
        {
            var read = await inner.ReadAsync(buffer, 0, 1, cancellationToken).ConfigureAwait(false);
            return read == 0 ? -1 : buffer[0];
        }
    }

    /// <summary>
    /// A client that does not open with a TLS record (plain text, garbage) is told so in the protocol's own
    /// terms, as a plain-text client can read it, instead of waiting out the handshake timeout.
    /// </summary>
    private static async Task<TlsHandshakeException> RefuseNonTlsAsync(Stream inner, int first)
    {
        if (first < 0)
        {
            return new TlsHandshakeException(TlsFailure.Handshake, "The client closed the connection before the TLS handshake.", closedFirst: true);
        }

        try
        {
            // A fresh connection's send buffer is empty: this does not wait on the peer.
            await inner.WriteAsync(TlsRequiredReply, 0, TlsRequiredReply.Length).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException || e is ObjectDisposedException)
        {
            // Gone already: closing is all that is left.
        }

        var shown = first >= 0x20 && first < 0x7F ? $"'{(char)first}' (0x{first:X2})" : $"0x{first:X2}";
        return new TlsHandshakeException(TlsFailure.Handshake, $"The client does not speak TLS (its first byte is {shown}, not a TLS handshake): it was answered '{Replies.TlsRequired}' and closed.");
    }

    private static CancellationTokenSource Deadline(TimeSpan timeout, CancellationToken cancellationToken)
    {
        var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        if (timeout > TimeSpan.Zero)
        {
            deadline.CancelAfter(timeout);
        }

        return deadline;
    }

    private static bool IsHandshakeFailure(Exception e) =>
        e is AuthenticationException || e is IOException || e is ObjectDisposedException || e is OperationCanceledException || e is Win32Exception;

    private static string Describe(Exception e)
    {
        var message = e.Message;
        for (var inner = e.InnerException; inner is not null; inner = inner.InnerException)
        {
            if (!message.Contains(inner.Message))
            {
                message += " (" + inner.Message + ")";
            }
        }

        return message;
    }
}

using System;
using System.Management.Automation;
using System.Security;
using System.Security.Cryptography.X509Certificates;
using KeyShell.Engine.Security;
using KeyShell.Engine.Server;

namespace KeyShell;

/// <summary>TLS parameters given together that do not go together: the error InvalidTlsParameters.</summary>
public sealed class TlsParameterException : ArgumentException
{
    public TlsParameterException(string message)
        : base(message)
    {
    }
}

/// <summary>
/// The TLS parameters the cmdlets share, checked in code rather than by parameter sets (which would multiply
/// Start-KeyServer's KeyMap and Handler sets by every way of giving a certificate): a server's
/// -Certificate | -CertificatePath [-KeyPath] [-CertificatePassword], and a client's -UseTls -SkipCertificateCheck -Certificate.
/// </summary>
internal static class TlsParameters
{
    /// <summary>
    /// The server certificate the parameters name, or null when none is given. Throws
    /// <see cref="TlsParameterException"/> for parameters that do not go together, and
    /// <see cref="KeyServerException"/> (CertificateInvalid) for a certificate that cannot serve.
    /// </summary>
    public static ServerCertificate? ReadServerCertificate(PSCmdlet cmdlet, X509Certificate2? certificate, string? certificatePath, string? keyPath, SecureString? password)
    {
        if (certificate is not null && certificatePath is not null)
        {
            throw new TlsParameterException("Give the certificate one way: -Certificate (an X509Certificate2) or -CertificatePath (a file), not both.");
        }

        if (certificatePath is null && (keyPath is not null || password is not null))
        {
            throw new TlsParameterException("-KeyPath and -CertificatePassword go with -CertificatePath (a certificate given with -Certificate already holds its key).");
        }

        if (certificate is not null)
        {
            return new ServerCertificate(CertificateLoader.UsableBySchannel(certificate));
        }

        if (certificatePath is null)
        {
            return null;
        }

        return ServerCertificate.FromFile(Resolve(cmdlet, certificatePath), keyPath is null ? null : Resolve(cmdlet, keyPath), password);
    }

    /// <summary>
    /// A client's TLS settings checked: -SkipCertificateCheck and -Certificate need -UseTls (quietly speaking plain
    /// text to a server the user believes is TLS would be worse than an error); the certificate needs its key.
    /// </summary>
    public static void CheckClient(bool useTls, bool skipCertificateCheck, X509Certificate2? certificate)
    {
        if (!useTls && (skipCertificateCheck || certificate is not null))
        {
            throw new TlsParameterException("-SkipCertificateCheck and -Certificate go with -UseTls: without it the connection is plain text.");
        }

        if (certificate is not null && !certificate.HasPrivateKey)
        {
            throw new KeyServerException(
                KeyServerErrorKind.CertificateInvalid,
                $"The client certificate '{certificate.Subject}' ({certificate.Thumbprint}) has no private key: a client needs its key to prove the certificate is its own.",
                certificate);
        }
    }

    /// <summary>A client's -Certificate as the TLS stack can present it (see <see cref="CertificateLoader.UsableBySchannel"/>).</summary>
    public static X509Certificate2? ClientCertificate(X509Certificate2? certificate) =>
        certificate is null ? null : CertificateLoader.UsableBySchannel(certificate);

    public static ErrorRecord Record(TlsParameterException e, object? target) =>
        new(e, ErrorIds.InvalidTlsParameters, ErrorCategory.InvalidArgument, target);

    public static ErrorRecord Record(KeyServerException e) => ErrorIds.Record(e, ErrorIds.For(e.Kind), e.Target);

    public static ErrorRecord Record(TlsCertificateUntrustedException e, object? target) =>
        new(e, ErrorIds.TlsCertificateUntrusted, ErrorCategory.SecurityError, target);

    private static string Resolve(PSCmdlet cmdlet, string path) => cmdlet.SessionState.Path.GetUnresolvedProviderPathFromPSPath(path);
}

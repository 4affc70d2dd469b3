using System;
using System.Security;
using System.Security.Cryptography.X509Certificates;

namespace KeyShell.Engine.Security;

/// <summary>
/// PEM on netstandard2.0 (Windows PowerShell 5.1), which has no PEM reader: certificates (authority files,
/// and a certificate file's, so its errors are the ones PowerShell 7 gives) are read here by hand; keys are not
/// read at all, and the error names PFX instead.
/// </summary>
public static partial class CertificateLoader
{
    private static X509Certificate2 AttachPemKey(X509Certificate2Collection certificates, string path, string keyText, string keyFile, SecureString? password) =>
        throw Invalid(
            $"'{path}' is a PEM file: reading a PEM private key needs PowerShell 7 (.NET 5 or later). On Windows PowerShell 5.1 give a PFX file instead (openssl pkcs12 -export -in cert.pem -inkey key.pem -out cert.pfx).",
            path);

    /// <summary>Each CERTIFICATE block's certificate (simple enough to read by hand).</summary>
    private static X509Certificate2Collection ReadPemCertificates(string text, string path)
    {
        var certificates = new X509Certificate2Collection();
        var at = 0;
        while ((at = text.IndexOf(BeginCertificate, at, StringComparison.Ordinal)) >= 0)
        {
            var start = at + BeginCertificate.Length;
            var end = text.IndexOf(EndCertificate, start, StringComparison.Ordinal);
            if (end < 0)
            {
                throw Invalid($"'{path}' has a certificate block that cannot be read: no '{EndCertificate}' line.", path);
            }

            byte[] der;
            try
            {
                der = Convert.FromBase64String(text.Substring(start, end - start));
            }
            catch (FormatException e)
            {
                throw Invalid($"'{path}' has a certificate block that cannot be read: not base64.", path, e);
            }

            certificates.Add(FromDer(der, path));
            at = end + EndCertificate.Length;
        }

        return certificates;
    }
}

using System;
using System.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using KeyShell.Engine.Server;

namespace KeyShell.Engine.Security;

/// <summary>
/// PEM on .NET 8 (PowerShell 7), read by .NET itself: X509Certificate2Collection.ImportFromPem for the
/// certificates, X509Certificate2.CreateFromPem and CreateFromEncryptedPem to join the key to its certificate.
/// Each file is read once (by <see cref="Load(string, string?, SecureString?, out X509Certificate2Collection)"/>),
/// so a file replaced while it is read cannot give a certificate from one version and a chain from the other.
/// KeyShell's own part is finding out why .NET refused a key, so that the error can say so.
/// </summary>
public static partial class CertificateLoader
{
    private const string RsaOid = "1.2.840.113549.1.1.1";
    private const string EcOid = "1.2.840.10045.2.1";
    private const string EncryptedKeyLabel = "ENCRYPTED PRIVATE KEY";

    private static X509Certificate2Collection ReadPemCertificates(string text, string path)
    {
        var certificates = new X509Certificate2Collection();
        try
        {
            certificates.ImportFromPem(text);
        }
        catch (CryptographicException e)
        {
            throw Invalid($"'{path}' has a certificate that cannot be read: a '{BeginCertificate}' block holds something else.", path, e);
        }

        // .NET passes over a block that is not well-formed PEM; KeyShell does not let a broken one go unseen.
        if (certificates.Count < text.Split(new[] { BeginCertificate }, StringSplitOptions.None).Length - 1)
        {
            throw Invalid($"'{path}' has a certificate block that cannot be read: not base64, or no '{EndCertificate}' line.", path);
        }

        return certificates;
    }

    /// <summary>
    /// Joins the PEM key to the certificate it belongs to: the first of the file, or another of a full chain in
    /// any order. A password for a key that is not encrypted is not needed, and ignored.
    /// </summary>
    private static X509Certificate2 AttachPemKey(X509Certificate2Collection certificates, string path, string keyText, string keyFile, SecureString? password)
    {
        var (label, keyPem) = FindKey(keyText) ?? throw NoKey(path, keyText, keyFile);
        var encrypted = label == EncryptedKeyLabel;
        if (encrypted && password is null)
        {
            throw Invalid($"The private key in '{keyFile}' is encrypted: give its password (-CertificatePassword).", keyFile);
        }

        var algorithm = certificates[0].GetKeyAlgorithm();
        if (algorithm != RsaOid && algorithm != EcOid)
        {
            throw Invalid($"The certificate in '{path}' has a key of type {algorithm}; from PEM, KeyShell reads RSA and ECDSA keys (a PFX file can hold any).", path);
        }

        var secret = encrypted ? Reveal(password!) : null;
        try
        {
            foreach (var certificate in certificates)
            {
                if (TryJoin(certificate, keyText, secret) is { } withKey)
                {
                    var usable = UsableBySchannel(withKey);
                    if (!ReferenceEquals(usable, withKey))
                    {
                        withKey.Dispose();
                    }

                    return usable;
                }
            }

            throw WhyTheKeyDoesNotFit(keyPem, secret, algorithm, path, keyFile);
        }
        finally
        {
            if (secret is not null)
            {
                Array.Clear(secret, 0, secret.Length);
            }
        }
    }

    /// <summary>The certificate with the key, or null when the key is not its own (or cannot be read at all).</summary>
    private static X509Certificate2? TryJoin(X509Certificate2 certificate, string keyText, char[]? secret)
    {
        var pem = certificate.ExportCertificatePem();
        try
        {
            return secret is null ? X509Certificate2.CreateFromPem(pem, keyText) : X509Certificate2.CreateFromEncryptedPem(pem, keyText, secret);
        }
        catch (Exception e) when (e is ArgumentException || e is CryptographicException)
        {
            return null;
        }
    }

    /// <summary>
    /// Why no certificate of the file took the key, found by reading the key alone: as a key of the certificate's
    /// type (then it is another certificate's), as one of the other type, or not at all (damaged, or the wrong password).
    /// </summary>
    private static KeyServerException WhyTheKeyDoesNotFit(string keyPem, char[]? secret, string algorithm, string path, string keyFile)
    {
        var failure = ImportFailure(algorithm, keyPem, secret);
        if (failure is null)
        {
            return Invalid($"The private key in '{keyFile}' does not belong to the certificate in '{path}': their public keys differ.", keyFile);
        }

        var other = algorithm == RsaOid ? EcOid : RsaOid;
        if (ImportFailure(other, keyPem, secret) is null)
        {
            return Invalid($"The private key in '{keyFile}' does not belong to the certificate: it is an {Name(other)} key, the certificate's is {Name(algorithm)}.", keyFile, failure);
        }

        return secret is null
            ? Invalid($"The private key in '{keyFile}' cannot be read: {failure.Message}", keyFile, failure)
            : Invalid($"Cannot decrypt the private key in '{keyFile}': the password is wrong (or the key is damaged).", keyFile, failure);
    }

    private static Exception? ImportFailure(string algorithm, string keyPem, char[]? secret)
    {
        using AsymmetricAlgorithm key = algorithm == RsaOid ? RSA.Create() : ECDsa.Create();
        try
        {
            if (secret is null)
            {
                key.ImportFromPem(keyPem);
            }
            else
            {
                key.ImportFromEncryptedPem(keyPem, secret);
            }

            return null;
        }
        catch (Exception e) when (e is ArgumentException || e is CryptographicException)
        {
            return e;
        }
    }

    private static KeyServerException NoKey(string path, string keyText, string keyFile)
    {
        if (keyText.Contains("Proc-Type: 4,ENCRYPTED"))
        {
            return Invalid(
                $"The private key in '{keyFile}' is encrypted in OpenSSL's traditional format (Proc-Type: 4,ENCRYPTED), which .NET does not read: convert it to encrypted PKCS#8 (openssl pkcs8 -topk8 -in key.pem -out key-pkcs8.pem).",
                keyFile);
        }

        return Invalid(
            keyFile == path
                ? $"'{path}' holds a certificate but no private key: give the key's file with -KeyPath, or one PEM file holding both."
                : $"'{keyFile}' holds no private key (no '-----BEGIN PRIVATE KEY-----', RSA, EC or ENCRYPTED PRIVATE KEY block).",
            keyFile);
    }

    /// <summary>The first private key block (its label, and the block alone), as .NET's PEM reader finds it.</summary>
    private static (string Label, string Pem)? FindKey(string text)
    {
        var rest = text.AsSpan();
        while (PemEncoding.TryFind(rest, out var fields))
        {
            var label = rest[fields.Label];
            if (label is "PRIVATE KEY" or "RSA PRIVATE KEY" or "EC PRIVATE KEY" or EncryptedKeyLabel)
            {
                return (label.ToString(), rest[fields.Location].ToString());
            }

            rest = rest.Slice(fields.Location.End.Value);
        }

        return null;
    }

    private static string Name(string algorithm) => algorithm == RsaOid ? "RSA" : "ECDSA";
}

using System;
using System.Collections.Generic;
using System.IO;
using System.Runtime.InteropServices;
using System.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using KeyShell.Engine.Server;

namespace KeyShell.Engine.Security;

/// <summary>
/// Reads certificates from files: a certificate with its private key, for a server (or a client) to present,
/// from PEM (certificate and key in one file, or the key in its own; PKCS#8, PKCS#1 or SEC1 keys, encrypted
/// PKCS#8 with a password) or PFX/PKCS#12; and bundles of authority certificates (PEM or DER).
/// Every failure is a <see cref="KeyServerException"/> of kind CertificateInvalid whose message says what
/// is wrong and whose Target is the file at fault.
/// </summary>
public static class CertificateLoader
{
    private const string RsaOid = "1.2.840.113549.1.1.1";
    private const string EcOid = "1.2.840.10045.2.1";
    private const string BeginCertificate = "-----BEGIN CERTIFICATE-----";
    private const string EndCertificate = "-----END CERTIFICATE-----";

    /// <summary>
    /// Loads a certificate with its private key. A PEM file may hold further certificates (a full chain):
    /// the one the key belongs to is returned, the others are the chain to send with it. A PFX returns its
    /// certificate that has a key, the others being the chain. <paramref name="keyPath"/> is for PEM only.
    /// </summary>
    public static X509Certificate2 Load(string path, string? keyPath, SecureString? password, out X509Certificate2Collection chain)
    {
        var bytes = ReadFile(path, "certificate");
        var key = keyPath is null ? null : ReadFile(keyPath, "key");
        if (IsPem(bytes))
        {
            return LoadPem(path, Encoding.ASCII.GetString(bytes), keyPath ?? path, key is null ? null : Encoding.ASCII.GetString(key), password, out chain);
        }

        if (keyPath is not null)
        {
            throw Invalid($"-KeyPath goes with a PEM certificate; '{path}' is not PEM (a PFX holds its own key).", keyPath);
        }

        return LoadPfx(path, bytes, password, out chain);
    }

    /// <summary>Loads a certificate with its private key, ignoring any chain in the file.</summary>
    public static X509Certificate2 Load(string path, string? keyPath = null, SecureString? password = null) => Load(path, keyPath, password, out _);

    /// <summary>
    /// Loads the authority certificates a peer's certificate must chain to: a PEM bundle of one or more
    /// certificates, or one DER certificate. Private keys in the file are ignored.
    /// </summary>
    public static X509Certificate2Collection LoadAuthorities(string path)
    {
        var bytes = ReadFile(path, "authority");
        var authorities = new X509Certificate2Collection();
        if (IsPem(bytes))
        {
            foreach (var der in PemCertificates(Encoding.ASCII.GetString(bytes), path))
            {
                authorities.Add(FromDer(der, path));
            }
        }
        else if (ContentType(bytes) == X509ContentType.Cert)
        {
            authorities.Add(FromDer(bytes, path));
        }

        if (authorities.Count == 0)
        {
            throw Invalid($"'{path}' holds no certificate: an authority file is PEM (one or more '{BeginCertificate}' blocks) or one DER certificate.", path);
        }

        return authorities;
    }

    /// <summary>
    /// SChannel (Windows' TLS) cannot use a key that lives only in memory (keys read from PEM, certificates made
    /// with CertificateRequest): on Windows this returns a copy whose key went through PKCS#12 into a key store,
    /// when the key can be exported; otherwise, and on other systems, the certificate itself. The argument is
    /// never disposed.
    /// </summary>
    public static X509Certificate2 UsableBySchannel(X509Certificate2 certificate)
    {
        if (certificate is null)
        {
            throw new ArgumentNullException(nameof(certificate));
        }

        if (!RuntimeInformation.IsOSPlatform(OSPlatform.Windows) || !certificate.HasPrivateKey)
        {
            return certificate;
        }

        try
        {
            return RoundTripThroughPkcs12(certificate);
        }
        catch (CryptographicException)
        {
            return certificate; // not exportable: a key in a store already, which SChannel can use
        }
    }

    internal static X509Certificate2 RoundTripThroughPkcs12(X509Certificate2 certificate)
    {
        var pfx = certificate.Export(X509ContentType.Pkcs12);
        try
        {
            return NewCertificate(pfx, null);
        }
        finally
        {
            Array.Clear(pfx, 0, pfx.Length);
        }
    }

    internal static KeyServerException Invalid(string message, object? target, Exception? inner = null) =>
        new(KeyServerErrorKind.CertificateInvalid, message, target, inner);

    private static X509Certificate2 LoadPem(string path, string text, string keyFile, string? keyText, SecureString? password, out X509Certificate2Collection chain)
    {
        var certificates = new List<X509Certificate2>();
        foreach (var der in PemCertificates(text, path))
        {
            certificates.Add(FromDer(der, path));
        }

        if (certificates.Count == 0)
        {
            throw Invalid($"'{path}' holds no certificate (no '{BeginCertificate}' block).", path);
        }

        var leaf = AttachPemKey(certificates, path, keyText ?? text, keyFile, password);
        chain = new X509Certificate2Collection();
        foreach (var certificate in certificates)
        {
            if (!certificate.RawData.AsSpan().SequenceEqual(leaf.RawData))
            {
                chain.Add(certificate);
            }
        }

        return leaf;
    }

#if NET
    /// <summary>Reads the PEM key and joins it to the certificate it belongs to (the first, or another of a full chain).</summary>
    private static X509Certificate2 AttachPemKey(List<X509Certificate2> certificates, string path, string keyText, string keyFile, SecureString? password)
    {
        var label = FindKeyLabel(keyText);
        if (label is null)
        {
            throw Invalid(
                keyFile == path
                    ? $"'{path}' holds a certificate but no private key: give the key's file with -KeyPath, or one PEM file holding both."
                    : $"'{keyFile}' holds no private key (no '-----BEGIN PRIVATE KEY-----', RSA, EC or ENCRYPTED PRIVATE KEY block).",
                keyFile);
        }

        var encrypted = label == "ENCRYPTED PRIVATE KEY";
        if (encrypted && password is null)
        {
            throw Invalid($"The private key in '{keyFile}' is encrypted: give its password (-CertificatePassword).", keyFile);
        }

        var algorithm = certificates[0].GetKeyAlgorithm();
        if (algorithm != RsaOid && algorithm != EcOid)
        {
            throw Invalid($"The certificate in '{path}' has a key of type {algorithm}; from PEM, KeyShell reads RSA and ECDSA keys (a PFX file can hold any).", path);
        }

        using var key = ImportKey(keyText, algorithm, encrypted ? password : null, keyFile); // a password for a plain key is not needed
        foreach (var certificate in certificates)
        {
            if (certificate.GetKeyAlgorithm() != algorithm)
            {
                continue;
            }

            try
            {
                var withKey = key is RSA rsa ? certificate.CopyWithPrivateKey(rsa) : certificate.CopyWithPrivateKey((ECDsa)key);
                var usable = UsableBySchannel(withKey);
                if (!ReferenceEquals(usable, withKey))
                {
                    withKey.Dispose();
                }

                return usable;
            }
            catch (Exception e) when (e is ArgumentException || e is CryptographicException)
            {
                // Not this certificate's key: try the next one of the file.
            }
        }

        throw Invalid($"The private key in '{keyFile}' does not belong to the certificate in '{path}': their public keys differ.", keyFile);
    }

    private static AsymmetricAlgorithm ImportKey(string keyText, string algorithm, SecureString? password, string keyFile)
    {
        var key = Create(algorithm);
        char[]? secret = password is null ? null : Reveal(password);
        try
        {
            if (secret is null)
            {
                key.ImportFromPem(keyText);
            }
            else
            {
                key.ImportFromEncryptedPem(keyText, secret);
            }

            return key;
        }
        catch (Exception e) when (e is ArgumentException || e is CryptographicException)
        {
            key.Dispose();

            // Either the key is of the other type, or (encrypted) the password is wrong: the other type tells.
            var other = algorithm == RsaOid ? EcOid : RsaOid;
            using var probe = Create(other);
            try
            {
                if (secret is null)
                {
                    probe.ImportFromPem(keyText);
                }
                else
                {
                    probe.ImportFromEncryptedPem(keyText, secret);
                }
            }
            catch (Exception failure) when (failure is ArgumentException || failure is CryptographicException)
            {
                throw secret is null
                    ? Invalid($"The private key in '{keyFile}' cannot be read: {e.Message}", keyFile, e)
                    : Invalid($"Cannot decrypt the private key in '{keyFile}': the password is wrong (or the key is damaged).", keyFile, e);
            }

            throw Invalid($"The private key in '{keyFile}' does not belong to the certificate: it is an {Name(other)} key, the certificate's is {Name(algorithm)}.", keyFile, e);
        }
        finally
        {
            if (secret is not null)
            {
                Array.Clear(secret, 0, secret.Length);
            }
        }
    }

    private static AsymmetricAlgorithm Create(string algorithm) => algorithm == RsaOid ? RSA.Create() : ECDsa.Create();

    private static string Name(string algorithm) => algorithm == RsaOid ? "RSA" : "ECDSA";

    private static string? FindKeyLabel(string text)
    {
        var rest = text.AsSpan();
        while (PemEncoding.TryFind(rest, out var fields))
        {
            var label = rest[fields.Label].ToString();
            if (label is "PRIVATE KEY" or "RSA PRIVATE KEY" or "EC PRIVATE KEY" or "ENCRYPTED PRIVATE KEY")
            {
                return label;
            }

            rest = rest.Slice(fields.Location.End.Value);
        }

        return null;
    }
#else
    /// <summary>netstandard2.0 (Windows PowerShell 5.1) has no PEM key reader: PFX works there.</summary>
    private static X509Certificate2 AttachPemKey(List<X509Certificate2> certificates, string path, string keyText, string keyFile, SecureString? password) =>
        throw Invalid(
            $"'{path}' is a PEM file: reading a PEM private key needs PowerShell 7 (.NET 5 or later). On Windows PowerShell 5.1 give a PFX file instead (openssl pkcs12 -export -in cert.pem -inkey key.pem -out cert.pfx).",
            path);
#endif

    private static X509Certificate2 LoadPfx(string path, byte[] bytes, SecureString? password, out X509Certificate2Collection chain)
    {
        var type = ContentType(bytes);
        if (type == X509ContentType.Cert)
        {
            throw Invalid($"'{path}' is a certificate without its private key (DER): give a PFX file, or a PEM certificate with its key.", path);
        }

        if (type != X509ContentType.Pfx)
        {
            throw Invalid($"'{path}' is not a certificate: neither PEM ('{BeginCertificate}') nor PFX/PKCS#12.", path);
        }

        var all = new X509Certificate2Collection();
        var secret = password is null ? null : new string(Reveal(password));
        try
        {
            all.Import(bytes, secret, X509KeyStorageFlags.DefaultKeySet);
        }
        catch (CryptographicException e)
        {
            throw Invalid(
                password is null
                    ? $"Cannot open '{path}': it needs a password (-CertificatePassword), or it is damaged."
                    : $"Cannot open '{path}': the password is wrong (or the file is damaged).",
                path, e);
        }

        X509Certificate2? leaf = null;
        chain = new X509Certificate2Collection();
        foreach (var certificate in all)
        {
            if (leaf is null && certificate.HasPrivateKey)
            {
                leaf = certificate;
            }
            else
            {
                chain.Add(certificate);
            }
        }

        return leaf ?? throw Invalid($"'{path}' holds no certificate with a private key (a PFX exported without its key?).", path);
    }

    private static byte[] ReadFile(string path, string what)
    {
        if (string.IsNullOrEmpty(path))
        {
            throw Invalid($"No {what} file was given.", path);
        }

        try
        {
            return File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is FileNotFoundException || e is DirectoryNotFoundException)
        {
            throw Invalid($"The {what} file '{path}' does not exist.", path, e);
        }
        catch (Exception e) when (e is IOException || e is UnauthorizedAccessException || e is ArgumentException || e is NotSupportedException)
        {
            throw Invalid($"Cannot read the {what} file '{path}': {e.Message}", path, e);
        }
    }

    private static bool IsPem(byte[] bytes) => Encoding.ASCII.GetString(bytes, 0, Math.Min(bytes.Length, 64 * 1024)).Contains("-----BEGIN ");

    /// <summary>The DER bytes of each CERTIFICATE block (simple enough to read by hand on every target).</summary>
    private static IEnumerable<byte[]> PemCertificates(string text, string path)
    {
        var at = 0;
        while ((at = text.IndexOf(BeginCertificate, at, StringComparison.Ordinal)) >= 0)
        {
            var start = at + BeginCertificate.Length;
            var end = text.IndexOf(EndCertificate, start, StringComparison.Ordinal);
            if (end < 0)
            {
                throw Invalid($"'{path}' has a certificate block with no '{EndCertificate}' line.", path);
            }

            byte[] der;
            try
            {
                der = Convert.FromBase64String(text.Substring(start, end - start));
            }
            catch (FormatException e)
            {
                throw Invalid($"'{path}' has a certificate block that is not base64.", path, e);
            }

            yield return der;
            at = end + EndCertificate.Length;
        }
    }

    private static X509Certificate2 FromDer(byte[] der, string path)
    {
        try
        {
            return NewCertificate(der, null);
        }
        catch (CryptographicException e)
        {
            throw Invalid($"'{path}' has a certificate that cannot be read: {e.Message}", path, e);
        }
    }

    private static X509ContentType ContentType(byte[] bytes)
    {
        try
        {
            return X509Certificate2.GetCertContentType(bytes);
        }
        catch (CryptographicException)
        {
            return X509ContentType.Unknown;
        }
    }

    // One place for the constructor that .NET 9 marks obsolete (X509CertificateLoader is .NET 9+ only).
    private static X509Certificate2 NewCertificate(byte[] bytes, string? password) =>
        new(bytes, password, X509KeyStorageFlags.DefaultKeySet);

    /// <summary>A SecureString's characters, for the one call that needs them; callers clear the array.</summary>
    private static char[] Reveal(SecureString secret)
    {
        var pointer = Marshal.SecureStringToGlobalAllocUnicode(secret);
        try
        {
            var chars = new char[secret.Length];
            Marshal.Copy(pointer, chars, 0, chars.Length);
            return chars;
        }
        finally
        {
            Marshal.ZeroFreeGlobalAllocUnicode(pointer);
        }
    }
}

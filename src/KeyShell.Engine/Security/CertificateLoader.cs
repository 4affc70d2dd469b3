using System;
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
/// is wrong and whose Target is the file at fault. PEM differs between the builds: CertificateLoader.NetCore.cs
/// reads it with .NET's own PEM readers, CertificateLoader.NetStandard.cs (Windows PowerShell 5.1, which has
/// none) reads certificates by hand and no keys.
/// </summary>
public static partial class CertificateLoader
{
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
        if (PemText(bytes) is { } text)
        {
            return LoadPem(path, text, keyPath ?? path, key is null ? text : PemText(key) ?? string.Empty, password, out chain);
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
        if (PemText(bytes) is { } text)
        {
            authorities = ReadPemCertificates(text, path);
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

    private static X509Certificate2 LoadPem(string path, string text, string keyFile, string keyText, SecureString? password, out X509Certificate2Collection chain)
    {
        var certificates = ReadPemCertificates(text, path);
        if (certificates.Count == 0)
        {
            throw Invalid($"'{path}' holds no certificate (no '{BeginCertificate}' block).", path);
        }

        var leaf = AttachPemKey(certificates, path, keyText, keyFile, password);
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

    /// <summary>
    /// The file's text when it is PEM, else null. A byte order mark is honoured (Windows PowerShell writes UTF-8
    /// with one, and Out-File UTF-16), and blocks glued together by concatenating files that do not end in a
    /// line break (<c>-----END CERTIFICATE----------BEGIN ...</c>) are parted, as a PEM reader needs them.
    /// </summary>
    private static string? PemText(byte[] bytes)
    {
        var encoding = bytes.Length >= 2 && bytes[0] == 0xFF && bytes[1] == 0xFE ? Encoding.Unicode
            : bytes.Length >= 2 && bytes[0] == 0xFE && bytes[1] == 0xFF ? Encoding.BigEndianUnicode
            : Encoding.UTF8;
        var bom = encoding.GetPreamble();
        var skip = bytes.AsSpan().StartsWith(bom) ? bom.Length : 0;
        var head = encoding.GetString(bytes, skip, Math.Min(bytes.Length - skip, 64 * 1024));
        if (!head.Contains("-----BEGIN "))
        {
            return null;
        }

        return encoding.GetString(bytes, skip, bytes.Length - skip).Replace("----------BEGIN ", "-----\n-----BEGIN ");
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

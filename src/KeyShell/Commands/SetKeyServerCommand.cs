using System.Management.Automation;
using System.Security;
using System.Security.Cryptography.X509Certificates;
using KeyShell.Engine.Faults;
using KeyShell.Engine.Security;
using KeyShell.Engine.Server;
using KeyShell.Engine.Server.Upstream;

namespace KeyShell.Commands;

/// <summary>Changes a running server: replaces its key map atomically, its faults (the whole set at once), and
/// its TLS certificate for new connections.</summary>
[Cmdlet(VerbsCommon.Set, "KeyServer", SupportsShouldProcess = true, DefaultParameterSetName = ByObject)]
[OutputType(typeof(KeyServer))]
public sealed class SetKeyServerCommand : KeyServerTargetCmdlet
{
    /// <summary>The new map: a hashtable, or the path of a .json or .psd1 file.</summary>
    [Parameter]
    [ValidateNotNull]
    public object? KeyMap { get; set; }

    /// <summary>The new certificate (with its private key) for new TLS connections.</summary>
    [Parameter]
    [ValidateNotNull]
    public X509Certificate2? Certificate { get; set; }

    /// <summary>The new certificate's PEM or PFX file.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? CertificatePath { get; set; }

    /// <summary>The PEM private key of -CertificatePath, when it is in a file of its own.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? KeyPath { get; set; }

    /// <summary>The password of a PFX file or of an encrypted PEM key.</summary>
    [Parameter]
    [ValidateNotNull]
    public SecureString? CertificatePassword { get; set; }

    /// <summary>The new faults, replacing the whole set at once; <c>@()</c> removes them.</summary>
    [Parameter]
    [AllowEmptyCollection]
    public KeyFault[]? Fault { get; set; }

    /// <summary>A new seed for the faults' draws (with -Fault, or for the faults the server has).</summary>
    [Parameter]
    public int FaultSeed { get; set; }

    [Parameter]
    public SwitchParameter PassThru { get; set; }

    private bool SetsFaults => MyInvocation.BoundParameters.ContainsKey(nameof(Fault)) || MyInvocation.BoundParameters.ContainsKey(nameof(FaultSeed));

    private Engine.Protocol.KeyMap? _map;
    private ServerCertificate? _certificate;

    protected override void BeginProcessing()
    {
        // Both are built whole before any server sees them: a request is answered from the old map or the new
        // one, and a handshake presents the old certificate or the new one.
        if (KeyMap is not null)
        {
            try
            {
                _map = KeyMapReader.Read(this, KeyMap);
            }
            catch (System.Exception e) when (e is System.ArgumentException || e is System.IO.IOException || e is System.UnauthorizedAccessException || e is RuntimeException)
            {
                ThrowTerminatingError(new ErrorRecord(e, ErrorIds.InvalidKeyMap, ErrorCategory.InvalidArgument, KeyMap));
            }
        }

        try
        {
            _certificate = TlsParameters.ReadServerCertificate(this, Certificate, CertificatePath, KeyPath, CertificatePassword);
        }
        catch (TlsParameterException e)
        {
            ThrowTerminatingError(TlsParameters.Record(e, null));
        }
        catch (KeyServerException e)
        {
            ThrowTerminatingError(TlsParameters.Record(e));
        }

        if (MyInvocation.BoundParameters.ContainsKey(nameof(Fault)))
        {
            _ = FaultParameters.Read(this, true, Fault, FaultSeed); // a bad fault stops the command before any server changes
        }

        if (_map is null && _certificate is null && !SetsFaults)
        {
            ThrowTerminatingError(new ErrorRecord(
                new PSArgumentException("Nothing to set: give -KeyMap, -Fault (or -FaultSeed), or a certificate (-CertificatePath or -Certificate)."),
                ErrorIds.NothingToSet,
                ErrorCategory.InvalidArgument,
                null));
        }
    }

    protected override void ProcessRecord()
    {
        foreach (var server in Targets())
        {
            var changes = _map is null ? string.Empty : $"Replace the key map ({_map.Count} keys)";
            var faults = SetsFaults ? NewFaults(server) : null;
            if (faults is not null)
            {
                changes += (changes.Length == 0 ? string.Empty : "; ") + (faults.IsEmpty ? "Remove the faults" : $"Apply {faults.Faults.Count} fault(s), seed {faults.Seed}");
            }

            if (_certificate is not null)
            {
                changes += (changes.Length == 0 ? string.Empty : "; ") + $"Present the certificate {_certificate} to new connections";
            }

            if (!ShouldProcess($"KeyServer {server.Address}:{server.Port}", changes))
            {
                continue;
            }

            if (_certificate is not null)
            {
                try
                {
                    server.SetCertificate(_certificate);
                }
                catch (KeyServerException e)
                {
                    // This server only: the others named may speak TLS. Its key map is left as it was too.
                    WriteError(TlsParameters.Record(e));
                    continue;
                }
            }

            if (_map is not null)
            {
                if (server.Handler is UpstreamHandler upstream)
                {
                    WriteWarning($"The server on port {server.Port} answers through its upstream ({upstream.Target}); the new map is kept but not used.");
                }
                else if (server.Handler is not null)
                {
                    WriteWarning($"The server on port {server.Port} answers through its -Handler; the new map is kept but not used.");
                }

                server.KeyMap = _map;
            }

            if (faults is not null)
            {
                server.SetFaults(faults);
            }

            WriteDiagnostics(server);
            if (PassThru)
            {
                WriteObject(server);
            }
        }
    }

    /// <summary>The server's new set: -Fault (or the faults it has) with -FaultSeed (or the seed it has).</summary>
    private FaultSet NewFaults(KeyServer server)
    {
        var seed = MyInvocation.BoundParameters.ContainsKey(nameof(FaultSeed)) ? FaultSeed : server.FaultSet.Seed;
        var faults = MyInvocation.BoundParameters.ContainsKey(nameof(Fault)) ? Fault : System.Linq.Enumerable.ToArray(server.FaultSet.Faults);
        return FaultParameters.Read(this, true, faults, seed);
    }
}

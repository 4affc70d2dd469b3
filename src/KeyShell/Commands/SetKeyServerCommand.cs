using System.Management.Automation;
using KeyShell.Engine.Server;

namespace KeyShell.Commands;

/// <summary>Changes a running server: replaces its key map, atomically.</summary>
[Cmdlet(VerbsCommon.Set, "KeyServer", SupportsShouldProcess = true, DefaultParameterSetName = ByObject)]
[OutputType(typeof(KeyServer))]
public sealed class SetKeyServerCommand : KeyServerTargetCmdlet
{
    /// <summary>The new map: a hashtable, or the path of a .json or .psd1 file.</summary>
    [Parameter(Mandatory = true)]
    [ValidateNotNull]
    public object KeyMap { get; set; } = null!;

    [Parameter]
    public SwitchParameter PassThru { get; set; }

    private Engine.Protocol.KeyMap? _map;

    protected override void BeginProcessing()
    {
        try
        {
            // Built whole before any server sees it: a request is answered from the old map or the new one.
            _map = KeyMapReader.Read(this, KeyMap);
        }
        catch (System.Exception e) when (e is System.ArgumentException || e is System.IO.IOException || e is RuntimeException)
        {
            ThrowTerminatingError(new ErrorRecord(e, ErrorIds.InvalidKeyMap, ErrorCategory.InvalidArgument, KeyMap));
        }
    }

    protected override void ProcessRecord()
    {
        foreach (var server in Targets())
        {
            if (!ShouldProcess($"KeyServer {server.Address}:{server.Port}", $"Replace the key map ({_map!.Count} keys)"))
            {
                continue;
            }

            if (server.Handler is not null)
            {
                WriteWarning($"The server on port {server.Port} answers through its -Handler; the new map is kept but not used.");
            }

            server.KeyMap = _map!;
            WriteDiagnostics(server);
            if (PassThru)
            {
                WriteObject(server);
            }
        }
    }
}

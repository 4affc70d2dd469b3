using System.Linq;
using System.Management.Automation;
using KeyShell.Engine.Server;

namespace KeyShell.Commands;

/// <summary>Lists the session's running servers, with live counters.</summary>
[Cmdlet(VerbsCommon.Get, "KeyServer")]
[OutputType(typeof(KeyServer))]
public sealed class GetKeyServerCommand : KeyShellCmdlet
{
    [Parameter(Position = 0)]
    [ArgumentCompleter(typeof(PortCompleter))]
    public int[]? Port { get; set; }

    protected override void EndProcessing()
    {
        var servers = ServerRegistry.Running();
        if (Port is null)
        {
            WriteObject(servers, enumerateCollection: true);
            return;
        }

        foreach (var port in Port)
        {
            var onPort = servers.Where(s => s.Port == port).ToArray();
            if (onPort.Length == 0)
            {
                WriteError(new ErrorRecord(
                    new ItemNotFoundException($"No KeyServer of this session runs on port {port}."),
                    ErrorIds.KeyServerNotFound, ErrorCategory.ObjectNotFound, port));
            }

            WriteObject(onPort, enumerateCollection: true);
        }
    }
}

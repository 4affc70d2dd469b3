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
        var servers = Port is null ? ServerRegistry.Running() : ServerRegistry.OnPorts(this, Port);
        foreach (var server in servers)
        {
            // A log that cannot be written does not stop a server; the user hears of it here.
            if (server.LogErrors > 0)
            {
                WriteWarning($"The server on port {server.Port} could not write its log {server.LogErrors} time(s) and served those requests unlogged. Last: {server.LastLogError}");
            }

            WriteDiagnostics(server);

            WriteObject(server);
        }
    }
}

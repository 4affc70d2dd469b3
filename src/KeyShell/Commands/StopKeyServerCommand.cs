using System.Collections.Generic;
using System.Management.Automation;
using KeyShell.Engine.Server;

namespace KeyShell.Commands;

/// <summary>Stops servers: closes the listener, lets in-flight requests finish, closes connections, flushes the log.</summary>
[Cmdlet(VerbsLifecycle.Stop, "KeyServer", SupportsShouldProcess = true, DefaultParameterSetName = ByObject)]
[OutputType(typeof(KeyServer))]
public sealed class StopKeyServerCommand : KeyServerTargetCmdlet
{
    private const string AllServers = "All";

    [Parameter(ParameterSetName = AllServers, Mandatory = true)]
    public SwitchParameter All { get; set; }

    /// <summary>Outputs each stopped server.</summary>
    [Parameter]
    public SwitchParameter PassThru { get; set; }

    protected override void ProcessRecord()
    {
        foreach (var server in Targets())
        {
            if (!ShouldProcess($"KeyServer {server.Address}:{server.Port}", "Stop"))
            {
                continue;
            }

            // Ctrl+C cuts the stop short (what is left is aborted, the log flushed): the prompt comes back at once.
            server.StopAsync(Cancellation).GetAwaiter().GetResult();
            ServerRegistry.Remove(server);
            if (server.StopAbandoned)
            {
                WriteWarningEvenWhenStopping(
                    $"KeyServer {server.Address}:{server.Port}: the stop was interrupted: the connections still busy were aborted, and their requests in flight were not answered. The log is flushed and the server is stopped.");
            }

            if (Cancellation.IsCancellationRequested)
            {
                return;
            }

            WriteDiagnostics(server);
            if (PassThru)
            {
                WriteObject(server);
            }
        }
    }

    protected override IEnumerable<KeyServer> Targets() =>
        ParameterSetName == AllServers ? ServerRegistry.Running() : base.Targets();
}

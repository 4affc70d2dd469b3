using System.Collections.Generic;
using System.Management.Automation;
using KeyShell.Engine.Server;

namespace KeyShell.Commands;

/// <summary>Stops servers: closes the listener, lets in-flight requests finish, closes connections, flushes the log.</summary>
[Cmdlet(VerbsLifecycle.Stop, "KeyServer", SupportsShouldProcess = true, DefaultParameterSetName = ByObject)]
[OutputType(typeof(KeyServer))]
public sealed class StopKeyServerCommand : KeyShellCmdlet
{
    private const string ByObject = "InputObject";
    private const string ByPort = "Port";
    private const string AllServers = "All";

    [Parameter(ParameterSetName = ByObject, Mandatory = true, Position = 0, ValueFromPipeline = true)]
    [ValidateNotNull]
    public KeyServer[] InputObject { get; set; } = System.Array.Empty<KeyServer>();

    [Parameter(ParameterSetName = ByPort, Mandatory = true, ValueFromPipelineByPropertyName = true)]
    [ArgumentCompleter(typeof(PortCompleter))]
    public int[] Port { get; set; } = System.Array.Empty<int>();

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

            server.Stop();
            ServerRegistry.Remove(server);
            if (PassThru)
            {
                WriteObject(server);
            }
        }
    }

    private IEnumerable<KeyServer> Targets()
    {
        switch (ParameterSetName)
        {
            case AllServers:
                return ServerRegistry.Running();
            case ByPort:
                return ServerRegistry.OnPorts(this, Port);
            default:
                return InputObject;
        }
    }
}

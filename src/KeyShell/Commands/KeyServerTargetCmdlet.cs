using System.Collections.Generic;
using System.Management.Automation;
using KeyShell.Engine.Server;

namespace KeyShell.Commands;

/// <summary>The cmdlets that act on running servers, chosen by pipeline object or by -Port.</summary>
public abstract class KeyServerTargetCmdlet : KeyShellCmdlet
{
    protected const string ByObject = "InputObject";
    protected const string ByPort = "Port";

    [Parameter(ParameterSetName = ByObject, Mandatory = true, Position = 0, ValueFromPipeline = true)]
    [ValidateNotNull]
    public KeyServer[] InputObject { get; set; } = System.Array.Empty<KeyServer>();

    [Parameter(ParameterSetName = ByPort, Mandatory = true, ValueFromPipelineByPropertyName = true)]
    [ArgumentCompleter(typeof(PortCompleter))]
    public int[] Port { get; set; } = System.Array.Empty<int>();

    /// <summary>The servers named by the parameter set in use; a port with none is a KeyServerNotFound error.</summary>
    protected virtual IEnumerable<KeyServer> Targets() =>
        ParameterSetName == ByPort ? ServerRegistry.OnPorts(this, Port) : InputObject;
}

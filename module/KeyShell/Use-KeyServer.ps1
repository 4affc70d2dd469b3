# Use-KeyServer: a server for the length of a script block, stopped however the block ends.

# Start-KeyServer's parameters, for Use-KeyServer to take as its own: every one but -Wait (a foreground server
# would never reach the block), none of them positional (the block is the first positional argument).
function Get-KeyServerStartParameters {
    $parameters = [System.Management.Automation.RuntimeDefinedParameterDictionary]::new()
    $common = [System.Management.Automation.Cmdlet]::CommonParameters + [System.Management.Automation.Cmdlet]::OptionalCommonParameters
    foreach ($parameter in (Get-Command -Name 'KeyShell\Start-KeyServer').Parameters.Values) {
        if ($parameter.Name -in $common -or $parameter.Name -eq 'Wait') { continue }
        $attributes = [System.Collections.ObjectModel.Collection[System.Attribute]]::new()
        foreach ($set in $parameter.ParameterSets.GetEnumerator()) {
            $attribute = [System.Management.Automation.ParameterAttribute]::new()
            $attribute.ParameterSetName = $set.Key
            $attribute.Mandatory = $set.Value.IsMandatory
            $attributes.Add($attribute)
        }
        foreach ($attribute in $parameter.Attributes) {
            if ($attribute -isnot [System.Management.Automation.ParameterAttribute]) { $attributes.Add($attribute) }
        }
        $parameters.Add($parameter.Name, [System.Management.Automation.RuntimeDefinedParameter]::new($parameter.Name, $parameter.ParameterType, $attributes))
    }
    $parameters
}

function Use-KeyServer {
    # .ExternalHelp KeyShell.dll-Help.xml
    [CmdletBinding(DefaultParameterSetName = 'KeyMap')]
    [OutputType([object])]
    param(
        [Parameter(Mandatory, Position = 0)]
        [ValidateNotNull()]
        [scriptblock] $ScriptBlock
    )
    dynamicparam { Get-KeyServerStartParameters }

    end {
        $start = @{}
        foreach ($name in (Get-KeyServerStartParameters).Keys) {
            if ($PSBoundParameters.ContainsKey($name)) { $start[$name] = $PSBoundParameters[$name] }
        }
        try { $server = KeyShell\Start-KeyServer @start -ErrorAction Stop }
        catch { $PSCmdlet.ThrowTerminatingError($_) }

        try { & $ScriptBlock $server }
        finally {
            # Also when the block throws, or Ctrl+C stops it; -WhatIf and -Confirm in the caller's scope do not apply.
            KeyShell\Stop-KeyServer -InputObject $server -WhatIf:$false -Confirm:$false
        }
    }
}

<#
.SYNOPSIS
    Runs help examples one after another in this one pwsh, as a user who pastes them into one session does.
.DESCRIPTION
    Help.Tests.ps1 starts it in a fresh pwsh whose PSModulePath finds the module under test by name (as an
    installed one). Each example runs as written, in the order given, in this script's scope (so the
    variables one example sets stay, as at a prompt), with $ErrorActionPreference = 'Stop' and its output
    formatted as the console would show it. Port 8080 becomes -Port (a free port: other processes on the
    machine may hold 8080), and an example that reaches other machines over SSH (-HostName load1, server1)
    reaches this one through a throwaway sshd. After each example, whatever it left running (servers,
    jobs, event subscriptions, the port still served) is noted, then cleaned away so that the next one is
    judged on its own. Writes one result per example to -ResultsPath (JSON).
#>
param(
    [Parameter(Mandatory)] [string] $ExamplesPath,
    [Parameter(Mandatory)] [string] $ResultsPath,
    [Parameter(Mandatory)] [int] $Port,
    [Parameter(Mandatory)] [string] $WorkingDirectory,
    [string] $SshParametersPath
)

Set-Location $WorkingDirectory
# The cmdlets whose -Port defaults to 8080 default to -Port here, as 8080 in the examples' text becomes -Port.
foreach ($__HelpCommand in 'Start-KeyServer', 'Invoke-KeyClient', 'Test-KeyServer', 'Measure-KeyServer') { $PSDefaultParameterValues["${__HelpCommand}:Port"] = $Port }

# The runner's own variables start with __Help: the examples' variables ($server, $job, ...) never clobber them.
$__HelpExamples = Get-Content -Raw $ExamplesPath | ConvertFrom-Json
$__HelpPort = $Port
$__HelpSsh = if ($SshParametersPath) { Get-Content -Raw $SshParametersPath | ConvertFrom-Json -AsHashtable } else { $null }
$__HelpResults = [System.Collections.Generic.List[object]]::new()
Import-Module KeyShell -ErrorAction Stop

function Test-HelpPortServed([int] $Number) {
    $client = [System.Net.Sockets.TcpClient]::new()
    try { $client.Connect([System.Net.IPAddress]::Loopback, $Number); $true } catch { $false } finally { $client.Dispose() }
}

# True when the example itself runs Start-KeyServer -Wait (outside any script block of its own).
function Test-HelpForegroundServer([string] $Code) {
    $ast = [System.Management.Automation.Language.Parser]::ParseInput($Code, [ref]$null, [ref]$null)
    $found = $ast.FindAll({
            param($node)
            $node -is [System.Management.Automation.Language.CommandAst] -and $node.GetCommandName() -eq 'Start-KeyServer' -and
            @($node.CommandElements | Where-Object { $_ -is [System.Management.Automation.Language.CommandParameterAst] -and $_.ParameterName -eq 'Wait' }).Count -gt 0
        }, $true)
    foreach ($command in $found) {
        $parent = $command.Parent
        while ($parent -and $parent -isnot [System.Management.Automation.Language.ScriptBlockAst]) { $parent = $parent.Parent }
        if ($parent -eq $ast) { return $true }
    }
    $false
}

# What an example left behind, cleaned away: servers, jobs (but the runner's own stopper), event subscriptions.
function Clear-HelpLeftovers([System.Management.Automation.Job] $Stopper) {
    $left = [System.Collections.Generic.List[string]]::new()
    foreach ($server in @(Get-KeyServer)) { $left.Add("a server on port $($server.Port)"); $server | Stop-KeyServer }
    foreach ($job in @(Get-Job | Where-Object { -not $Stopper -or $_.Id -ne $Stopper.Id })) {
        $left.Add("the job '$($job.Name)' ($($job.State))")
        $job | Remove-Job -Force
    }
    foreach ($subscriber in @(Get-EventSubscriber)) { $left.Add("the event subscription '$($subscriber.SourceIdentifier)'"); $subscriber | Unregister-Event }
    if (Test-HelpPortServed $__HelpPort) { $left.Add("port $__HelpPort still served") }
    , $left
}

foreach ($__HelpExample in $__HelpExamples) {
    $__HelpCode = $__HelpExample.Code -replace '\b8080\b', $__HelpPort
    $__HelpSaved = $PSDefaultParameterValues.Clone()
    $__HelpError = $null
    if ($__HelpCode -match '-HostName') {
        if (-not $__HelpSsh) {
            $__HelpResults.Add([pscustomobject]@{ Command = $__HelpExample.Command; Title = $__HelpExample.Title; Skipped = 'no sshd for the remoting example'; Error = $null; Left = @(); Output = ''; Seconds = 0 })
            continue
        }
        # The load machines and the server of the example are this machine.
        $__HelpCode = $__HelpCode -replace '\bload\d\b', '127.0.0.1' -replace '\bserver1\b', '127.0.0.1'
        foreach ($__HelpCommand in 'Invoke-Command', 'New-PSSession') {
            foreach ($__HelpEntry in $__HelpSsh.GetEnumerator()) { $PSDefaultParameterValues["${__HelpCommand}:$($__HelpEntry.Key)"] = $__HelpEntry.Value }
        }
    }

    # A foreground server (-Wait) of the example itself (not one in a job's script block) is stopped from another
    # runspace once it is up, as q or Ctrl+C would stop it.
    $__HelpStopper = $null
    if (Test-HelpForegroundServer $__HelpCode) {
        $__HelpStopper = Start-ThreadJob {
            Import-Module KeyShell
            $deadline = [DateTime]::UtcNow.AddMinutes(2)
            while (-not (Get-KeyServer) -and [DateTime]::UtcNow -lt $deadline) { Start-Sleep -Milliseconds 50 }
            Stop-KeyServer -All
        }
    }

    $__HelpWatch = [System.Diagnostics.Stopwatch]::StartNew()
    $ErrorActionPreference = 'Stop'
    $__HelpOutput = try {
        . ([scriptblock]::Create($__HelpCode)) *>&1 | Out-String -Width 160
    }
    catch {
        $__HelpError = "$($_.FullyQualifiedErrorId): $($_.Exception.Message) (line $($_.InvocationInfo.ScriptLineNumber): $($_.InvocationInfo.Line.Trim()))"
    }
    $ErrorActionPreference = 'Continue'

    if ($__HelpStopper) { $__HelpStopper | Remove-Job -Force } # done once it stopped the server; stopped if the example failed first
    $__HelpLeft = Clear-HelpLeftovers $__HelpStopper
    $PSDefaultParameterValues.Clear()
    foreach ($__HelpEntry in $__HelpSaved.GetEnumerator()) { $PSDefaultParameterValues[$__HelpEntry.Key] = $__HelpEntry.Value }
    $__HelpResults.Add([pscustomobject]@{
            Command = $__HelpExample.Command; Title = $__HelpExample.Title; Skipped = $null
            Error = $__HelpError; Left = @($__HelpLeft); Output = "$__HelpOutput"; Seconds = [math]::Round($__HelpWatch.Elapsed.TotalSeconds, 1)
        })
}

$__HelpResults | ConvertTo-Json -Depth 4 | Set-Content -Path $ResultsPath -Encoding utf8

<#
.SYNOPSIS
    A KeyShell server for the benchmarks, in its own process: prints "PORT <n>", serves until its
    standard input closes, then stops cleanly (flushing its log). With -CertificatePath it speaks TLS.
    With -Wait it serves in the foreground as the seed's server did, echoing to the console (standard
    output, which the benchmark reads) until SIGTERM.
    With -MeterListener a MeterListener listens to the KeyShell.Server meter meanwhile (as dotnet-counters
    or OpenTelemetry would), and the requests it counted are printed at the end ("METERED <n>").
#>
param(
    [Parameter(Mandatory)] [string] $ModuleManifest,
    [string] $LogPath,
    [int] $IdleTimeoutSec = 60,
    [ValidateSet('Default', 'Map', 'Handler', 'FaultsThatHitNothing')] [string] $Answer = 'Default',
    [string] $Upstream,
    [string] $CertificatePath,
    [string] $KeyPath,
    [switch] $MeterListener,
    [switch] $Wait
)

$ErrorActionPreference = 'Stop'
Import-Module $ModuleManifest
$common = if ($LogPath) { @{ LogPath = $LogPath } } else { @{ NoLog = $true } }
if ($CertificatePath) { $common += @{ CertificatePath = $CertificatePath; KeyPath = $KeyPath } }
if ($Upstream) { $common += @{ Upstream = $Upstream } }
if ($Wait) {
    $null = Start-KeyServer -Port 0 -IdleTimeoutSec $IdleTimeoutSec @common -Wait
    return
}

$server = switch ($Answer) {
    # The seed's values again, but given as a user's map: the -KeyMap path against the default one.
    'Map' { Start-KeyServer -Port 0 -IdleTimeoutSec $IdleTimeoutSec @common -KeyMap @{ '0' = 12; '1' = 45; '2' = 78; '3' = 23; '4' = 56; '5' = 89; '6' = 34; '7' = 67; '8' = 90; '9' = 10 } }
    # Faults that aim at every client, so each request is counted and tried, but at a key no request sends.
    'FaultsThatHitNothing' { Start-KeyServer -Port 0 -IdleTimeoutSec $IdleTimeoutSec @common -Fault (New-KeyFault -Type Reset -Key 'nokey'), (New-KeyFault -Type Delay -Key 'nokey' -Probability 0.5) -FaultSeed 7 }
    'Handler' { Start-KeyServer -Port 0 -IdleTimeoutSec $IdleTimeoutSec @common -Handler { param($Request) "Response for the key $($Request.Key) : 1" } }
    default { Start-KeyServer -Port 0 -IdleTimeoutSec $IdleTimeoutSec @common }
}
$probe = $null
if ($MeterListener) {
    Add-Type -Path (Join-Path $PSScriptRoot '../KeyShell.Tests/MeterProbe.cs')
    $probe = [KeyShellMeterProbe]::new('KeyShell.Server', $server.Port)
}
[Console]::Out.WriteLine("PORT $($server.Port)")
[Console]::Out.Flush()
$null = [Console]::In.ReadToEnd()
$server | Stop-KeyServer
[Console]::Out.WriteLine("STOPPED $($server.Requests)")
if ($probe) { [Console]::Out.WriteLine("METERED $($probe.Sum('keyshell.requests'))"); $probe.Dispose() }

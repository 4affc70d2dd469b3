<#
.SYNOPSIS
    A KeyShell server for the benchmarks, in its own process: prints "PORT <n>", serves until its
    standard input closes, then stops cleanly (flushing its log).
#>
param(
    [Parameter(Mandatory)] [string] $ModuleManifest,
    [string] $LogPath,
    [int] $IdleTimeoutSec = 60
)

$ErrorActionPreference = 'Stop'
Import-Module $ModuleManifest
$server = if ($LogPath) { Start-KeyServer -Port 0 -LogPath $LogPath -IdleTimeoutSec $IdleTimeoutSec } else { Start-KeyServer -Port 0 -NoLog -IdleTimeoutSec $IdleTimeoutSec }
[Console]::Out.WriteLine("PORT $($server.Port)")
[Console]::Out.Flush()
$null = [Console]::In.ReadToEnd()
$server | Stop-KeyServer
[Console]::Out.WriteLine("STOPPED $($server.Requests)")

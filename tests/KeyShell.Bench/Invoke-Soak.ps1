<#
.SYNOPSIS
    The soak: build.ps1 -Task Soak -Minutes N runs it in a child pwsh.
.DESCRIPTION
    For N minutes, against one logging server in its own process: PerMessage load, Persistent load and
    garbage (random bytes on fresh connections), all at once. Reports errors beyond the garbage's (the
    load's failed requests; garbage only ever expects error replies or a close), the server's working set
    every 10 seconds, and whether the log is complete (every successful load request has its reply logged,
    in FIFO order, and every line parses). Writes JSON to out/soak/.
#>
param(
    [Parameter(Mandatory)] [string] $ModuleManifest,
    [Parameter(Mandatory)] [string] $OutDirectory,
    [Parameter(Mandatory)] [int] $Minutes
)

$ErrorActionPreference = 'Stop'
Import-Module (Join-Path $PSScriptRoot 'BenchSupport.psm1') -Force
Import-Module $ModuleManifest
$null = New-Item -ItemType Directory -Force -Path $OutDirectory
$log = Join-Path $OutDirectory 'soak_conversation_log.txt'
$seconds = $Minutes * 60
$server = Start-BenchServer -ModuleManifest $ModuleManifest -LogPath $log -IdleTimeoutSec 5
$port = $server.Port
Write-Host "Soak: $Minutes min against port $port (server pid $($server.Process.Id)); log $log"

$load = foreach ($mode in 'PerMessage', 'Persistent') {
    Start-ThreadJob -Name $mode -ScriptBlock {
        Import-Module $using:ModuleManifest
        Measure-KeyServer -Port $using:port -Connection $using:mode -Concurrency 4 -Duration $using:seconds -WarningAction SilentlyContinue
    }
}
$garbage = Start-ThreadJob -Name Garbage -ScriptBlock {
    $random = [System.Random]::new(20261125)
    $deadline = [DateTime]::UtcNow.AddSeconds($using:seconds)
    $sent = 0; $answered = 0; $closedQuietly = 0; $unexpected = 0
    while ([DateTime]::UtcNow -lt $deadline) {
        $bytes = [byte[]]::new($random.Next(1, 2048))
        $random.NextBytes($bytes)
        $socket = [System.Net.Sockets.Socket]::new('InterNetwork', 'Stream', 'Tcp')
        try {
            $socket.ReceiveTimeout = 10000
            $socket.Connect('127.0.0.1', $using:port)
            $null = $socket.Send($bytes)
            $socket.Shutdown('Send')
            $reply = [System.Text.StringBuilder]::new(); $buffer = [byte[]]::new(65536)
            while (($n = $socket.Receive($buffer)) -gt 0) { $null = $reply.Append([System.Text.Encoding]::ASCII.GetString($buffer, 0, $n)) }
            $sent++
            if ($reply.Length -eq 0) { $closedQuietly++ }
            elseif (@($reply.ToString().Split("`n", [StringSplitOptions]::RemoveEmptyEntries) | Where-Object { $_ -notlike 'Error:*' -and $_ -notlike 'Response for the key*' }).Count) { $unexpected++ }
            else { $answered++ }
        }
        catch { $unexpected++ }
        finally { $socket.Dispose() }
    }
    [pscustomobject]@{ Sent = $sent; Answered = $answered; ClosedQuietly = $closedQuietly; Unexpected = $unexpected }
}

$memory = [System.Collections.Generic.List[object]]::new()
$started = [DateTime]::UtcNow
$jobs = @($load) + $garbage
while (@($jobs | Where-Object { $_.State -in 'NotStarted', 'Running' }).Count -gt 0) {
    $memory.Add([pscustomobject]@{ Seconds = [int]([DateTime]::UtcNow - $started).TotalSeconds; WorkingSetMiB = [math]::Round((Get-WorkingSet $server.Process) / 1MB, 1) })
    Start-Sleep -Seconds 10
}
$results = @($load | Receive-Job -Wait -AutoRemoveJob)
$junk = $garbage | Receive-Job -Wait -AutoRemoveJob
Stop-BenchServer $server

$check = Test-KeyConversation -Path $log -Detailed
$served = ($results | ForEach-Object { $_.Requests - $_.Errors } | Measure-Object -Sum).Sum
# The load's clients are w0..wN (Measure-KeyServer's); the garbage never forms a valid w-client request.
$loggedServed = ($check.RepliesByClient.GetEnumerator() | Where-Object Key -Like 'w*' | Measure-Object Value -Sum).Sum
$report = [pscustomobject]@{
    Minutes              = $Minutes
    LoadRequests         = ($results | Measure-Object Requests -Sum).Sum
    LoadErrors           = ($results | Measure-Object Errors -Sum).Sum
    LoadPerSecond        = ($results | Measure-Object RequestsPerSecond -Sum).Sum
    Garbage              = $junk
    MemoryMiB            = $memory
    LogValid             = $check.IsValid
    LogProblems          = @($check.Problems | Select-Object -First 10)
    LoadRepliesServed    = $served
    LoadRepliesLogged    = $loggedServed
    LogComplete          = $check.IsValid -and $loggedServed -ge $served
}
$report | ConvertTo-Json -Depth 5 | Set-Content (Join-Path $OutDirectory ("soak-{0:yyyyMMdd-HHmmss}.json" -f [DateTime]::UtcNow))
Write-Host ''
$results | Format-Table Connection, Concurrency, Requests, Errors, @{ n = 'Requests/s'; e = { '{0:N0}' -f $_.RequestsPerSecond } }, P50, P99 | Out-String | Write-Host
Write-Host ("Garbage: {0} connections; {1} answered with errors, {2} closed without a reply, {3} unexpected." -f $junk.Sent, $junk.Answered, $junk.ClosedQuietly, $junk.Unexpected)
Write-Host ("Errors beyond the garbage's: {0} (of {1} load requests)." -f $report.LoadErrors, $report.LoadRequests)
$ws = $memory.WorkingSetMiB
Write-Host ("Server working set (MiB, every 10 s): first {0}, min {1}, max {2}, last {3}; series: {4}" -f $ws[0], ($ws | Measure-Object -Minimum).Minimum, ($ws | Measure-Object -Maximum).Maximum, $ws[-1], ($ws -join ' '))
Write-Host ("Log: {0}; {1} load replies served, {2} logged; complete: {3}." -f $(if ($check.IsValid) { 'every line parses, FIFO holds' } else { 'PROBLEMS: ' + ($check.Problems | Select-Object -First 3) -join '; ' }), $served, $loggedServed, $report.LogComplete)
if (-not $report.LogComplete -or $report.LoadErrors -gt 0 -or $junk.Unexpected -gt 0) { exit 1 }

<#
.SYNOPSIS
    The seed's session, end to end, with KeyShell.

.DESCRIPTION
    Starts a server on port 8080 (or on a free port when 8080 is taken), runs the seed's three client
    sequences in parallel, prints the conversation as the seed's two consoles show it, checks each
    client's FIFO order in the conversation log, and stops the server. Exits 1 when anything was wrong.
    `dotnet pwsh ./build.ps1 -Task Demo` builds the module and runs this script.

.PARAMETER ModuleManifest
    The KeyShell module to import; the build's out/KeyShell by default.

.PARAMETER WorkingDirectory
    Where the conversation log is written.
#>
param(
    [string] $ModuleManifest = (Join-Path $PSScriptRoot '../../out/KeyShell/KeyShell.psd1'),
    [string] $WorkingDirectory = (Join-Path ([System.IO.Path]::GetTempPath()) 'keyshell-demo')
)

Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'
Import-Module $ModuleManifest
$null = New-Item -ItemType Directory -Force -Path $WorkingDirectory
Set-Location $WorkingDirectory

$sequences = '1 1 2 3', '2 4 5 6', '3 7 8 9'
$seedValues = @{ '0' = 12; '1' = 45; '2' = 78; '3' = 23; '4' = 56; '5' = 89; '6' = 34; '7' = 67; '8' = 90; '9' = 10 }
$problems = [System.Collections.Generic.List[string]]::new()

try {
    $server = Start-KeyServer -Port 8080
}
catch {
    if ($_.FullyQualifiedErrorId -notlike 'PortInUse*') { throw }
    $server = Start-KeyServer -Port 0
    Write-Host "Port 8080 is taken; the demo uses port $($server.Port)." -ForegroundColor Yellow
}

try {
    Write-Host "`n=== Client console ===" -ForegroundColor Cyan
    Write-Host 'Client launched...'
    if (Test-KeyServer -Port $server.Port) {
        Write-Host 'Server detected. Sending the sequences' ($sequences -join ' | ')
    }

    # The seed's client lines are Invoke-KeyClient's verbose stream; they print as the replies arrive.
    $replies = @(Invoke-KeyClient -Sequences $sequences -Port $server.Port -Verbose 4>&1 | ForEach-Object {
            if ($_ -is [System.Management.Automation.VerboseRecord]) { Write-Host $_.Message } else { $_ }
        })

    foreach ($sequence in $sequences) {
        $client, $keys = $sequence -split ' '
        $own = @($replies | Where-Object ClientId -EQ $client)
        $expected = @($keys | ForEach-Object { "Response for the key $_ : $($seedValues[$_])" })
        if ((@($own.Reply) -join '|') -ne ($expected -join '|')) {
            $problems.Add("Client $client got [$(@($own.Reply) -join '; ')], expected [$($expected -join '; ')].")
        }
    }
}
finally {
    $stopped = $server | Stop-KeyServer -PassThru
}

Write-Host "`n=== Server console ===" -ForegroundColor Cyan
Write-Host "Server launched... (press 'q' to quit)"
Write-Host "Server waiting for connexion on the port $($server.Port)..."
foreach ($entry in Get-KeyConversation -Path $server.LogPath) {
    if ($entry.Source -eq 'SYSTEM' -and $entry.Text -eq 'Client connected!') { Write-Host 'Client connected!' }
    elseif ($entry.Source -eq 'Client' -and $entry.ClientId -ne 'probe') { Write-Host "Client $($entry.ClientId) : $($entry.Key)" }
}
Write-Host '[Server] Stop asked...'

Write-Host "`n=== Conversation log: $($server.LogPath) ===" -ForegroundColor Cyan
$check = Test-KeyConversation -Path $server.LogPath -Sequences $sequences -Detailed
$check.Problems | ForEach-Object { $problems.Add($_) }
Write-Host "$($check.Requests) requests, $($check.Replies) replies, $($check.Clients) clients; FIFO order per client: $(if ($check.IsValid) { 'holds' } else { 'BROKEN' })"

if ($stopped.State -ne 'Stopped' -or (Test-KeyServer -Port $server.Port)) {
    $problems.Add("The server on port $($server.Port) did not stop cleanly.")
}
if (@(Get-Content $server.LogPath)[-1] -ne 'SYSTEM: Server stopped') {
    $problems.Add('The log does not end with SYSTEM: Server stopped.')
}

if ($problems.Count -gt 0) {
    Write-Host "`nDemo FAILED:" -ForegroundColor Red
    $problems | ForEach-Object { Write-Host "  - $_" -ForegroundColor Red }
    exit 1
}

Write-Host "`nDemo passed: $($replies.Count) replies, all right; each client's keys and replies in FIFO order in the log; server stopped cleanly." -ForegroundColor Green

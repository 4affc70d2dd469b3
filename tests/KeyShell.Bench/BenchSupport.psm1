# Shared by the benchmark and the soak: servers in child processes, the neutral load generator, memcached.
# Get-PwshPath and Get-FreePort come from the Pester helpers.
Import-Module (Join-Path $PSScriptRoot '../KeyShell.Tests/TestHelpers.psm1') -Force

# Starts a KeyShell server in its own pwsh; returns @{ Process; Port }.
function Start-BenchServer {
    param([Parameter(Mandatory)] [string] $ModuleManifest, [string] $LogPath, [int] $IdleTimeoutSec = 60, [string] $Answer = 'Default', [switch] $MeterListener)
    $info = [System.Diagnostics.ProcessStartInfo]::new((Get-PwshPath))
    $arguments = @('-NoProfile', '-NonInteractive', '-File', (Join-Path $PSScriptRoot 'Start-BenchServer.ps1'), '-ModuleManifest', $ModuleManifest, '-IdleTimeoutSec', $IdleTimeoutSec, '-Answer', $Answer)
    if ($LogPath) { $arguments += @('-LogPath', $LogPath) }
    if ($MeterListener) { $arguments += '-MeterListener' }
    foreach ($argument in $arguments) { $info.ArgumentList.Add([string]$argument) }
    $info.RedirectStandardInput = $true
    $info.RedirectStandardOutput = $true
    $info.UseShellExecute = $false
    $process = [System.Diagnostics.Process]::Start($info)
    $line = $process.StandardOutput.ReadLineAsync()
    if (-not $line.Wait(30000) -or $line.Result -notmatch '^PORT (\d+)$') { $process.Kill($true); throw "The benchmark server did not start: $($line.Result)" }
    $name = if ($Answer -ne 'Default') { "KeyShell ($Answer)" } elseif ($LogPath) { 'KeyShell (log on)' } else { 'KeyShell (log off)' }
    if ($MeterListener) { $name += ' + MeterListener' }
    [pscustomobject]@{ Process = $process; Port = [int]$Matches[1]; Name = $name }
}

function Stop-BenchServer {
    param([Parameter(Mandatory)] $Server)
    if ($Server.Process.HasExited) { return }
    $Server.Process.StandardInput.Close()
    if (-not $Server.Process.WaitForExit(30000)) { $Server.Process.Kill($true) }
}

# memcached as the yardstick, with the seed's ten keys set as k0..k9; $null when it is not installed.
function Start-Memcached {
    $memcached = Get-Command memcached -CommandType Application -ErrorAction Ignore | Select-Object -First 1
    if (-not $memcached) { return $null }
    $port = Get-FreePort
    $info = [System.Diagnostics.ProcessStartInfo]::new($memcached.Source)
    foreach ($argument in '-u', 'root', '-l', '127.0.0.1', '-p', $port, '-t', '2', '-c', '4096') { $info.ArgumentList.Add([string]$argument) }
    $info.UseShellExecute = $false
    $process = [System.Diagnostics.Process]::Start($info)
    $values = 12, 45, 78, 23, 56, 89, 34, 67, 90, 10
    $deadline = [DateTime]::UtcNow.AddSeconds(10)
    while ($true) {
        try {
            $client = [System.Net.Sockets.TcpClient]::new('127.0.0.1', $port)
            break
        }
        catch { if ([DateTime]::UtcNow -gt $deadline) { throw 'memcached did not start.' }; Start-Sleep -Milliseconds 50 }
    }
    try {
        $stream = $client.GetStream()
        $text = -join (0..9 | ForEach-Object { "set k$_ 0 0 2`r`n{0:00}`r`n" -f $values[$_] })
        $bytes = [System.Text.Encoding]::ASCII.GetBytes($text)
        $stream.Write($bytes, 0, $bytes.Length)
        $buffer = [byte[]]::new(1024); $received = ''
        while (([regex]::Matches($received, 'STORED')).Count -lt 10) { $received += [System.Text.Encoding]::ASCII.GetString($buffer, 0, $stream.Read($buffer, 0, 1024)) }
    }
    finally { $client.Dispose() }
    [pscustomobject]@{ Process = $process; Port = $port; Name = 'memcached' }
}

# Finds (or compiles) the neutral load generator; $null with a reason when there is none.
function Get-Keyload {
    param([Parameter(Mandatory)] [string] $Root, [Parameter(Mandatory)] [string] $OutDirectory)
    if ($env:KEYLOAD -and (Test-Path $env:KEYLOAD)) { return $env:KEYLOAD }
    $source = Join-Path $Root '../shared/tools/keyload.c'
    $binary = Join-Path $OutDirectory 'keyload'
    if (Test-Path $binary) { return $binary }
    $cc = Get-Command cc, gcc, clang -CommandType Application -ErrorAction Ignore | Select-Object -First 1
    if (-not (Test-Path $source) -or -not $cc) { return $null }
    & $cc.Source -O2 -o $binary $source -pthread
    if ($LASTEXITCODE -ne 0) { return $null }
    $binary
}

# One keyload run: "wire mode workers requests ok bad req_per_s p50_us p99_us".
function Invoke-Keyload {
    param([Parameter(Mandatory)] [string] $Keyload, [Parameter(Mandatory)] [int] $Port, [Parameter(Mandatory)] [string] $Wire,
        [Parameter(Mandatory)] [string] $Mode, [int] $Workers, [int] $PerWorker, [int] $Depth = 1, [switch] $AnyReply)
    $arguments = @('-p', $Port, '-w', $Wire, '-m', $Mode, '-c', $Workers, '-n', $PerWorker)
    if ($AnyReply) { $arguments += '-k' }
    if ($Depth -gt 1) { $arguments += @('-d', $Depth) }
    $line = & $Keyload @arguments 2>$null | Select-Object -Last 1
    $f = "$line" -split ' '
    if ($f.Count -lt 9) { return [pscustomobject]@{ Requests = 0; Ok = 0; Bad = $Workers * $PerWorker; RequestsPerSecond = 0.0; P50 = 0.0; P99 = 0.0 } }
    [pscustomobject]@{ Requests = [long]$f[3]; Ok = [long]$f[4]; Bad = [long]$f[5]; RequestsPerSecond = [double]$f[6]; P50 = [double]$f[7]; P99 = [double]$f[8] }
}

function Get-WorkingSet([System.Diagnostics.Process] $Process) {
    $Process.Refresh()
    $Process.WorkingSet64
}

function Get-ProcessorTime([System.Diagnostics.Process] $Process) {
    $Process.Refresh()
    $Process.TotalProcessorTime
}

function Get-Median([double[]] $Values) {
    $sorted = @($Values | Sort-Object)
    if ($sorted.Count -eq 0) { return 0 }
    $sorted[[int][math]::Floor(($sorted.Count - 1) / 2)]
}

# Round i of one target against round i of another: both ran within a minute of each other.
function Get-RoundRatios([double[]] $Numerators, [double[]] $Denominators) {
    for ($i = 0; $i -lt [math]::Min($Numerators.Count, $Denominators.Count); $i++) {
        $Numerators[$i] / [math]::Max(1, $Denominators[$i])
    }
}

Export-ModuleMember -Function *

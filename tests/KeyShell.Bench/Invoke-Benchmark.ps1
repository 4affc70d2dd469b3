<#
.SYNOPSIS
    The KeyShell benchmark: build.ps1 -Task Bench runs it in a child pwsh.
.DESCRIPTION
    KeyShell (log on, log off), memcached and limitd (the least a server can do per request), driven by the
    same neutral load generator (keyload) in the same run, alternating, three rounds; medians. Then the costs
    of the meters and of -Wait's console, each as a pair of servers alternating. Then memory (1,000 idle connections; before and after
    1,000,000 requests), the client (Invoke-KeyClient against keyload on the same load), the load generator
    (Measure-KeyServer against keyload on the same server, closed loop; -Rate's achieved rate against the asked), and TLS: KeyShell
    with a certificate against memcached -Z with the same one, driven by keyload -t (8 persistent
    connections, and a connection per request, a full handshake each). Prints tables and writes JSON to
    out/bench/.
    With -Baseline (another build's KeyShell.psd1, for example the previous commit's), that build runs beside
    this one in every table, in the same rounds, alternating: log on, log off, the handler, TLS; the ratios
    KS/baseline say what a change gained or lost, measured under the same noise.
#>
param(
    [Parameter(Mandatory)] [string] $ModuleManifest,
    [Parameter(Mandatory)] [string] $Root,
    [Parameter(Mandatory)] [string] $OutDirectory,
    [int] $Rounds = 3,
    [string] $Baseline
)

$ErrorActionPreference = 'Stop'
Import-Module (Join-Path $PSScriptRoot 'BenchSupport.psm1') -Force
Import-Module $ModuleManifest
$null = New-Item -ItemType Directory -Force -Path $OutDirectory

$keyload = Get-Keyload -Root $Root -OutDirectory $OutDirectory
if (-not $keyload) {
    throw "The benchmark needs the neutral load generator keyload: set `$env:KEYLOAD to its binary, or provide ../shared/tools/keyload.c and a C compiler (cc)."
}

$scenarios = @(
    @{ Name = 'PerMessage x1'; Mode = 'conn'; Workers = 1; PerWorker = 3000; Depth = 1 }
    @{ Name = 'PerMessage x8'; Mode = 'conn'; Workers = 8; PerWorker = 1500; Depth = 1 }
    @{ Name = 'PerMessage x64'; Mode = 'conn'; Workers = 64; PerWorker = 200; Depth = 1 }
    @{ Name = 'Persistent x1'; Mode = 'persist'; Workers = 1; PerWorker = 30000; Depth = 1 }
    @{ Name = 'Persistent x8'; Mode = 'persist'; Workers = 8; PerWorker = 15000; Depth = 1 }
    @{ Name = 'Persistent x64'; Mode = 'persist'; Workers = 64; PerWorker = 2000; Depth = 1 }
    @{ Name = 'Pipelined 16 x8'; Mode = 'persist'; Workers = 8; PerWorker = 100000; Depth = 16 }
)

$logPath = Join-Path $OutDirectory 'bench_conversation_log.txt'
$targets = [System.Collections.Generic.List[object]]::new()
$targets.Add((Start-BenchServer -ModuleManifest $ModuleManifest -LogPath $logPath))
$targets.Add((Start-BenchServer -ModuleManifest $ModuleManifest))
if ($Baseline) {
    $targets.Add((Start-BenchServer -ModuleManifest $Baseline -Label baseline -LogPath (Join-Path $OutDirectory 'bench_baseline_log.txt')))
    $targets.Add((Start-BenchServer -ModuleManifest $Baseline -Label baseline))
}
$memcached = Start-Memcached
if ($memcached) { $targets.Add($memcached) }
else { Write-Warning 'memcached is not on PATH: KeyShell is measured alone, with no ratio. Install the Debian package memcached (apt-get install memcached) to compare.' }
$limitd = Start-Limitd -Root $Root -OutDirectory $OutDirectory
if ($limitd) { $targets.Add($limitd) }
else { Write-Warning 'limitd could not be compiled (../shared/tools/limitd.c and a C compiler): no ratio against the limit.' }

$samples = @{}
try {
    for ($round = 1; $round -le $Rounds; $round++) {
        # Each round starts with the next target, so none always runs first (or right after another).
        $first = ($round - 1) % $targets.Count
        $order = @($targets)[$first..($targets.Count - 1)] + @($targets)[0..($targets.Count - 1)] | Select-Object -First $targets.Count
        foreach ($scenario in $scenarios) {
            foreach ($target in $order) {
                $wire = if ($target.Name -eq 'memcached') { 'memcached' } else { 'line' }
                Write-Host ("round {0}: {1,-16} {2}" -f $round, $scenario.Name, $target.Name)
                $cpuBefore = Get-ProcessorTime $target.Process
                $run = Invoke-Keyload -Keyload $keyload -Port $target.Port -Wire $wire -Mode $scenario.Mode -Workers $scenario.Workers -PerWorker $scenario.PerWorker -Depth $scenario.Depth
                # The server's CPU time per request: less noisy than requests/s on a shared machine, and
                # it shows which server leaves more of the cores to its clients.
                $run | Add-Member CpuMicroseconds ((Get-ProcessorTime $target.Process) - $cpuBefore).TotalMicroseconds
                $key = "$($scenario.Name)|$($target.Name)"
                if (-not $samples.ContainsKey($key)) { $samples[$key] = [System.Collections.Generic.List[object]]::new() }
                $samples[$key].Add($run)
            }
        }
    }

    # Memory per idle connection: a fresh logging server (a server that has run the load above has free
    # heap to spare, and new connections would not show), warmed by one short session, then 1,000
    # connections that send nothing.
    $fresh = Start-BenchServer -ModuleManifest $ModuleManifest -LogPath (Join-Path $OutDirectory 'bench_idle_log.txt')
    try {
        $null = Invoke-Keyload -Keyload $keyload -Port $fresh.Port -Wire line -Mode persist -Workers 2 -PerWorker 1000
        Start-Sleep -Seconds 1
        $idleBefore = Get-WorkingSet $fresh.Process
        $idle = foreach ($i in 1..1000) { $s = [System.Net.Sockets.Socket]::new('InterNetwork', 'Stream', 'Tcp'); $s.Connect('127.0.0.1', $fresh.Port); $s }
        Start-Sleep -Seconds 2
        $withIdle = Get-WorkingSet $fresh.Process
        $idle | ForEach-Object { $_.Dispose() }
    }
    finally { Stop-BenchServer $fresh }

    # No growth: the logging server of the runs above, around 1,000,000 requests, twice.
    $server = $targets[0]
    $beforeMillion = Get-WorkingSet $server.Process
    $million = Invoke-Keyload -Keyload $keyload -Port $server.Port -Wire line -Mode persist -Workers 8 -PerWorker 125000
    Start-Sleep -Seconds 1
    $afterMillion = Get-WorkingSet $server.Process
    $million2 = Invoke-Keyload -Keyload $keyload -Port $server.Port -Wire line -Mode persist -Workers 8 -PerWorker 125000
    Start-Sleep -Seconds 1
    $afterTwoMillion = Get-WorkingSet $server.Process

    # Programmable servers: a -Handler script block, and a user's -KeyMap against the default map,
    # on 8 persistent connections (log off).
    $programmable = @((Start-BenchServer -ModuleManifest $ModuleManifest -Answer Handler), (Start-BenchServer -ModuleManifest $ModuleManifest -Answer Map))
    if ($Baseline) { $programmable += Start-BenchServer -ModuleManifest $Baseline -Label baseline -Answer Handler }
    try {
        foreach ($target in $programmable) {
            # Warm-up, not measured: the first requests compile the handler and the pipelines in each runspace.
            $null = Invoke-Keyload -Keyload $keyload -Port $target.Port -Wire line -Mode persist -Workers 8 -PerWorker 1000 -AnyReply
        }

        $answers = foreach ($round in 1..$Rounds) {
            foreach ($target in @($programmable) + $targets[1]) {
                $run = Invoke-Keyload -Keyload $keyload -Port $target.Port -Wire line -Mode persist -Workers 8 -PerWorker $(if ($target.Name -like '*Handler*') { 2500 } else { 15000 }) -AnyReply
                [pscustomobject]@{ Target = $target.Name; RequestsPerSecond = $run.RequestsPerSecond; Errors = $run.Bad }
            }
        }
    }
    finally { $programmable | ForEach-Object { Stop-BenchServer $_ } }

    # The meters' cost: two fresh servers (log off), one with a MeterListener attached to KeyShell.Server
    # (every measurement delivered, as to dotnet-counters or OpenTelemetry) and one without, the same
    # load on each, alternating within each round (which goes first alternates too).
    $meterTargets = @((Start-BenchServer -ModuleManifest $ModuleManifest), (Start-BenchServer -ModuleManifest $ModuleManifest -MeterListener))
    try {
        foreach ($target in $meterTargets) { $null = Invoke-Keyload -Keyload $keyload -Port $target.Port -Wire line -Mode persist -Workers 8 -PerWorker 2000 } # warm-up
        $meters = @(Compare-BenchPair -Keyload $keyload -Pair $meterTargets -Scenarios ($scenarios | Where-Object Name -In 'PerMessage x8', 'Persistent x8', 'Pipelined 16 x8') -Rounds $Rounds)
    }
    finally {
        foreach ($target in $meterTargets) { Stop-BenchServer $target }
        # The listener's own count: proof that it was attached and saw every request.
        $metered = ($meterTargets[1].Process.StandardOutput.ReadToEnd() -split "`n" | Where-Object { $_ -match '^METERED (\d+)' } | ForEach-Object { [long]$Matches[1] })
    }

    # The test double (log off, alternating within each round): a server with faults that hit no request
    # against one without (what defining faults costs: two fresh servers, each warmed on every scenario they are
    # compared on, as a server that has already run the load above would have its accept path compiled and the
    # other not), and upstream mode in front of the plain server against that server itself (what the front
    # adds: its rate, and its median latency beside the direct one).
    $faultScenarios = @($scenarios | Where-Object Name -In 'PerMessage x8', 'Persistent x8', 'Pipelined 16 x8')
    $doubleTargets = @((Start-BenchServer -ModuleManifest $ModuleManifest), (Start-BenchServer -ModuleManifest $ModuleManifest -Answer FaultsThatHitNothing))
    $front = Start-BenchServer -ModuleManifest $ModuleManifest -Upstream "127.0.0.1:$($targets[1].Port)"
    $proxyd = Start-Proxyd -Root $Root -OutDirectory $OutDirectory -UpstreamPort $targets[1].Port
    if (-not $proxyd) { Write-Warning 'proxyd could not be compiled (tests/KeyShell.Bench/tools/proxyd.c and a C compiler): upstream mode is measured with no proxy limit.' }
    $socat = Start-Socat -UpstreamPort $targets[1].Port
    if (-not $socat) { Write-Warning 'socat is not on PATH: upstream mode is measured with no proxy yardstick. Install the Debian package socat to compare.' }
    $proxy = @(); $proxyLimit = @(); $frontOverLimit = @()
    try {
        foreach ($target in $doubleTargets) {
            foreach ($scenario in $faultScenarios) { $null = Invoke-Keyload -Keyload $keyload -Port $target.Port -Wire line -Mode $scenario.Mode -Workers $scenario.Workers -PerWorker ([math]::Max(200, $scenario.PerWorker / 5)) -Depth $scenario.Depth } # warm-up
        }
        $null = Invoke-Keyload -Keyload $keyload -Port $front.Port -Wire line -Mode persist -Workers 8 -PerWorker 2000 # warm-up
        $faulted = @(Compare-BenchPair -Keyload $keyload -Pair $doubleTargets -Scenarios $faultScenarios -Rounds $Rounds)
        $upstream = @(Compare-BenchPair -Keyload $keyload -Pair @($targets[1], $front) -Scenarios ($scenarios | Where-Object Name -In 'Persistent x8') -Rounds $Rounds)
        if ($proxyd) {
            $proxyLimit = @(Compare-BenchPair -Keyload $keyload -Pair @($targets[1], $proxyd) -Scenarios ($scenarios | Where-Object Name -In 'Persistent x8') -Rounds $Rounds)
            $frontOverLimit = @(Compare-BenchPair -Keyload $keyload -Pair @($proxyd, $front) -Scenarios ($scenarios | Where-Object Name -In 'Persistent x8') -Rounds $Rounds)
        }
        if ($socat) { $proxy = @(Compare-BenchPair -Keyload $keyload -Pair @($targets[1], $socat) -Scenarios ($scenarios | Where-Object Name -In 'Persistent x8') -Rounds $Rounds) }
    }
    finally { $doubleTargets | ForEach-Object { Stop-BenchServer $_ }; Stop-BenchServer $front; if ($proxyd -and -not $proxyd.Process.HasExited) { $proxyd.Process.Kill() }; if ($socat) { Stop-Socat $socat } }

    # The seed's console: the same logging server in the background and under Start-KeyServer -Wait, which
    # echoes connections and requests (its output read as a terminal would), alternating within each round.
    $consoleTargets = @((Start-BenchServer -ModuleManifest $ModuleManifest -LogPath (Join-Path $OutDirectory 'bench_background_log.txt')),
        (Start-BenchServer -ModuleManifest $ModuleManifest -LogPath (Join-Path $OutDirectory 'bench_wait_log.txt') -Wait))
    try {
        foreach ($target in $consoleTargets) { $null = Invoke-Keyload -Keyload $keyload -Port $target.Port -Wire line -Mode persist -Workers 8 -PerWorker 2000 } # warm-up
        $console = @(Compare-BenchPair -Keyload $keyload -Pair $consoleTargets -Scenarios ($scenarios | Where-Object Name -In 'PerMessage x8', 'Persistent x8') -Rounds $Rounds)
    }
    finally { foreach ($target in $consoleTargets) { Stop-BenchServer $target } }

    # The client: Invoke-KeyClient against keyload, the same load (64 persistent sequences of 1,000 keys).
    $plain = $targets[1]
    $sequences = foreach ($c in 1..64) { "$c " + ((0..999 | ForEach-Object { ($c + $_) % 10 }) -join ' ') }
    # Warm-up, not measured: the JIT compiles and tiers up the client's code over the first runs (keyload
    # is compiled C); measured from cold, the first rounds run at half speed.
    foreach ($warmup in 1..2) { $null = Invoke-KeyClient -Sequences $sequences -Port $plain.Port -Connection Persistent -ProgressAction SilentlyContinue }
    $clientRuns = foreach ($round in 1..$Rounds) {
        $elapsed = Measure-Command { $replies = Invoke-KeyClient -Sequences $sequences -Port $plain.Port -Connection Persistent -ProgressAction SilentlyContinue }
        $keyloadRun = Invoke-Keyload -Keyload $keyload -Port $plain.Port -Wire line -Mode persist -Workers 64 -PerWorker 1000
        [pscustomobject]@{ InvokeKeyClient = @($replies).Count / $elapsed.TotalSeconds; Keyload = $keyloadRun.RequestsPerSecond }
    }

    # The load generator: Measure-KeyServer against keyload on the same server, then -Rate held or not.
    $generator = Compare-MeasureKeyServer -Keyload $keyload -Port $plain.Port -Rounds $Rounds
}
finally {
    foreach ($target in $targets) {
        if ($target.Name -in 'memcached', 'limitd') { $target.Process.Kill($true) } else { Stop-BenchServer $target }
    }
}

$rows = foreach ($scenario in $scenarios) {
    $row = [ordered]@{ Scenario = $scenario.Name }
    foreach ($target in $targets) {
        $runs = $samples["$($scenario.Name)|$($target.Name)"]
        $row[$target.Name] = [pscustomobject]@{
            RequestsPerSecond = Get-Median $runs.RequestsPerSecond
            P50Microseconds   = Get-Median $runs.P50
            P99Microseconds   = Get-Median $runs.P99
            Errors            = ($runs | Measure-Object Bad -Sum).Sum
            CpuMicrosecondsPerRequest = Get-Median @($runs | ForEach-Object { $_.CpuMicroseconds / [math]::Max(1, $_.Ok) })
            Rounds            = @($runs.RequestsPerSecond)
        }
    }
    if ($memcached) {
        $row['RatioLogOn'] = $row['KeyShell (log on)'].RequestsPerSecond / [math]::Max(1, $row['memcached'].RequestsPerSecond)
        $row['RatioLogOff'] = $row['KeyShell (log off)'].RequestsPerSecond / [math]::Max(1, $row['memcached'].RequestsPerSecond)
        # The same ratio taken within each round: the machine's load drifts between rounds (the same server
        # can swing 30 %), and a pair measured minutes apart carries that drift into the ratio of medians.
        $row['RoundRatiosLogOn'] = @(Get-RoundRatios $row['KeyShell (log on)'].Rounds $row['memcached'].Rounds)
    }
    if ($limitd) {
        # How close to the least a server can do per request: the rest is the kernel's, for any server.
        $row['LimitRatioLogOn'] = $row['KeyShell (log on)'].RequestsPerSecond / [math]::Max(1, $row['limitd'].RequestsPerSecond)
        $row['LimitRatioLogOff'] = $row['KeyShell (log off)'].RequestsPerSecond / [math]::Max(1, $row['limitd'].RequestsPerSecond)
    }
    if ($Baseline) {
        $row['BaselineRatioLogOn'] = $row['KeyShell (log on)'].RequestsPerSecond / [math]::Max(1, $row['baseline (log on)'].RequestsPerSecond)
        $row['BaselineRatioLogOff'] = $row['KeyShell (log off)'].RequestsPerSecond / [math]::Max(1, $row['baseline (log off)'].RequestsPerSecond)
    }
    $row['LogCost'] = 1 - ($row['KeyShell (log on)'].RequestsPerSecond / [math]::Max(1, $row['KeyShell (log off)'].RequestsPerSecond))
    [pscustomobject]$row
}

$memory = [pscustomobject]@{
    BaselineBytes              = $idleBefore
    With1000IdleBytes          = $withIdle
    BytesPerIdleConnection     = ($withIdle - $idleBefore) / 1000
    Before1MRequestsBytes      = $beforeMillion
    After1MRequestsBytes       = $afterMillion
    After2MRequestsBytes       = $afterTwoMillion
    MillionRequestsErrors      = $million.Bad + $million2.Bad
}
$programmed = foreach ($group in $answers | Group-Object Target) {
    [pscustomobject]@{ Target = $group.Name; RequestsPerSecond = Get-Median $group.Group.RequestsPerSecond; Errors = ($group.Group | Measure-Object Errors -Sum).Sum }
}
$client = [pscustomobject]@{
    InvokeKeyClientPerSecond = Get-Median $clientRuns.InvokeKeyClient
    KeyloadPerSecond         = Get-Median $clientRuns.Keyload
    Ratio                    = (Get-Median $clientRuns.InvokeKeyClient) / [math]::Max(1, (Get-Median $clientRuns.Keyload))
}

Write-Host ''
Write-Host "Medians of $Rounds rounds, requests/s (p50 / p99 in microseconds), keyload on loopback, $([Environment]::ProcessorCount) cores:"
$table = foreach ($row in $rows) {
    $line = [ordered]@{ Scenario = $row.Scenario }
    foreach ($target in $targets) {
        $m = $row.($target.Name)
        $line[$target.Name] = '{0,9:N0} ({1:N0}/{2:N0}){3}' -f $m.RequestsPerSecond, $m.P50Microseconds, $m.P99Microseconds, $(if ($m.Errors) { " ERR $($m.Errors)" } else { '' })
    }
    if ($memcached) { $line['KS/mc log on'] = '{0:0.00}' -f $row.RatioLogOn; $line['KS/mc log off'] = '{0:0.00}' -f $row.RatioLogOff }
    if ($limitd) { $line['KS/limitd log on'] = '{0:0.00}' -f $row.LimitRatioLogOn; $line['KS/limitd log off'] = '{0:0.00}' -f $row.LimitRatioLogOff }
    if ($Baseline) { $line['KS/baseline log on'] = '{0:0.00}' -f $row.BaselineRatioLogOn; $line['KS/baseline log off'] = '{0:0.00}' -f $row.BaselineRatioLogOff }
    $line['log cost'] = '{0:P0}' -f $row.LogCost
    [pscustomobject]$line
}
$table | Format-Table -AutoSize | Out-String -Width 250 | Write-Host
if ($memcached) {
    Write-Host 'KeyShell (log on) / memcached within each round (median, lowest - highest): how much of the ratio is the machine''s noise:'
    $spread = foreach ($row in $rows) {
        $ratios = $row.RoundRatiosLogOn
        [pscustomobject]@{ Scenario = $row.Scenario; Median = '{0:0.00}' -f (Get-Median $ratios); Range = '{0:0.00} - {1:0.00}' -f ($ratios | Measure-Object -Minimum).Minimum, ($ratios | Measure-Object -Maximum).Maximum }
    }
    $spread | Format-Table -AutoSize | Out-String -Width 250 | Write-Host
}
Write-Host 'Server CPU time per request, microseconds (medians; lower leaves more of the machine to the clients):'
$cpuTable = foreach ($row in $rows) {
    $line = [ordered]@{ Scenario = $row.Scenario }
    foreach ($target in $targets) { $line[$target.Name] = '{0:N1}' -f $row.($target.Name).CpuMicrosecondsPerRequest }
    [pscustomobject]$line
}
$cpuTable | Format-Table -AutoSize | Out-String -Width 250 | Write-Host
Write-Host ('Memory: {0:N1} KiB per idle connection (1,000 open); working set {1:N1} MiB before 1M requests, {2:N1} MiB after, {3:N1} MiB after 2M.' -f ($memory.BytesPerIdleConnection / 1KB), ($memory.Before1MRequestsBytes / 1MB), ($memory.After1MRequestsBytes / 1MB), ($memory.After2MRequestsBytes / 1MB))
Write-Host ('Programmable, 8 persistent connections (log off): ' + (($programmed | ForEach-Object { '{0} {1:N0}/s{2}' -f $_.Target, $_.RequestsPerSecond, $(if ($_.Errors) { " ERR $($_.Errors)" }) }) -join '; '))
Write-BenchPair -Title "Meters: a MeterListener on KeyShell.Server attached vs none (log off; medians of $Rounds alternating rounds; the listener counted $metered requests):" -First without -Second with -Rows $meters
Write-BenchPair -Title "Faults defined that hit no request (two faults, every client counted and tried) vs none (log off; two fresh servers warmed alike; medians of $Rounds alternating rounds):" -First none -Second faults -Rows $faulted
Write-BenchPair -Title "Upstream mode: a front (Start-KeyServer -Upstream) before the plain server vs that server directly (log off; medians of $Rounds alternating rounds; the front's CPU only):" -First direct -Second front -Rows $upstream
if ($proxyLimit) {
    Write-BenchPair -Title "The proxy's limit: proxyd (the least a proxy can do: one epoll thread per loop, each read sent on at once) before the same server vs that server directly (log off; medians of $Rounds alternating rounds):" -First direct -Second proxyd -Rows $proxyLimit
    Write-BenchPair -Title "Upstream mode against that limit: the front vs proxyd, alternating (log off; medians of $Rounds rounds):" -First proxyd -Second front -Rows $frontOverLimit
}
# The lines upstream mode is held to, read off the tables above, with the least proxy's figures beside them:
# where the load generator, the proxy and the server share the cores, even proxyd lands near them.
$upstreamRow = @($upstream)[0]
if ($upstreamRow) {
    $line = 'Upstream mode, 8 persistent connections: +{0:N0} us to the median (line: under 100), {1:0.00} of the direct rate (line: at least 0.50)' -f ($upstreamRow.SecondP50 - $upstreamRow.FirstP50), $upstreamRow.Ratio
    $limitRow = @($proxyLimit)[0]
    if ($limitRow) { $line += '; proxyd in the same run: +{0:N0} us, {1:0.00}' -f ($limitRow.SecondP50 - $limitRow.FirstP50), $limitRow.Ratio }
    Write-Host "$line.`n"
}
if ($proxy) { Write-BenchPair -Title "The proxy's yardstick: socat (a process per connection copying bytes) before the same server vs that server directly (log off; medians of $Rounds alternating rounds):" -First direct -Second socat -Rows $proxy }
Write-BenchPair -Title "The seed's console: Start-KeyServer -Wait (echoing every connection and request it can show) vs the same server in the background (log on; medians of $Rounds alternating rounds):" -First background -Second wait -Rows $console
Write-Host ('Client: Invoke-KeyClient {0:N0}/s, keyload {1:N0}/s on the same load (64 x 1,000 persistent): ratio {2:0.00}.' -f $client.InvokeKeyClientPerSecond, $client.KeyloadPerSecond, $client.Ratio)
Write-MeasureKeyServer $generator

# TLS: KeyShell with a certificate (log on, log off) against memcached -Z with the same certificate, driven by
# keyload -t, alternating within each round. A KeyShell server that does not answer over TLS (its transport
# does not speak it yet) is reported as such, and its rows are not measured.
$tlsScenarios = @(
    @{ Name = 'TLS Persistent x8'; Mode = 'persist'; Workers = 8; PerWorker = 15000 }
    @{ Name = 'TLS PerMessage x8'; Mode = 'conn'; Workers = 8; PerWorker = 250 }
)
$tlsRows = @()
$tlsTargets = [System.Collections.Generic.List[object]]::new()
$tlsNotes = [System.Collections.Generic.List[string]]::new()
$keyloadTls = Get-KeyloadTls -Root $Root -OutDirectory $OutDirectory
$tlsCertificate = if ($keyloadTls) { New-BenchCertificate -OutDirectory $OutDirectory }
if ($tlsCertificate) {
    try {
        $tlsBuilds = @(@{ Manifest = $ModuleManifest; Label = 'KeyShell'; Log = 'bench_tls_log.txt' }, @{ Manifest = $ModuleManifest; Label = 'KeyShell'; Log = $null })
        if ($Baseline) { $tlsBuilds += @{ Manifest = $Baseline; Label = 'baseline'; Log = 'bench_baseline_tls_log.txt' } }
        foreach ($build in $tlsBuilds) {
            $log = if ($build.Log) { Join-Path $OutDirectory $build.Log }
            $candidate = Start-BenchServer -ModuleManifest $build.Manifest -Label $build.Label -LogPath $log -Certificate $tlsCertificate
            $why = Test-KeyShellTls -Port $candidate.Port
            if ($why) {
                $tlsNotes.Add("$($candidate.Name): not measured, it does not answer over TLS ($why). The TLS transport (issue 14) is not in this build yet.")
                Stop-BenchServer $candidate
            }
            else { $tlsTargets.Add($candidate) }
        }
        $memcachedTls = Start-Memcached -Certificate $tlsCertificate
        if ($memcachedTls) { $tlsTargets.Add($memcachedTls) }
        else { $tlsNotes.Add('memcached -Z: not measured (memcached is not installed, or was built without TLS).') }

        $tlsSamples = @{}
        for ($round = 1; $round -le $Rounds -and $tlsTargets.Count; $round++) {
            $first = ($round - 1) % $tlsTargets.Count
            $order = @($tlsTargets)[$first..($tlsTargets.Count - 1)] + @($tlsTargets)[0..($tlsTargets.Count - 1)] | Select-Object -First $tlsTargets.Count
            foreach ($scenario in $tlsScenarios) {
                foreach ($target in $order) {
                    $wire = if ($target.Name -like 'memcached*') { 'memcached' } else { 'line' }
                    Write-Host ("round {0}: {1,-18} {2}" -f $round, $scenario.Name, $target.Name)
                    $run = Invoke-Keyload -Keyload $keyloadTls -Tls -TimeoutSec 120 -Port $target.Port -Wire $wire -Mode $scenario.Mode -Workers $scenario.Workers -PerWorker $scenario.PerWorker
                    $key = "$($scenario.Name)|$($target.Name)"
                    if (-not $tlsSamples.ContainsKey($key)) { $tlsSamples[$key] = [System.Collections.Generic.List[object]]::new() }
                    $tlsSamples[$key].Add($run)
                }
            }
        }
        $tlsRows = foreach ($scenario in $tlsScenarios) {
            $row = [ordered]@{ Scenario = $scenario.Name }
            foreach ($target in $tlsTargets) {
                $runs = $tlsSamples["$($scenario.Name)|$($target.Name)"]
                $row[$target.Name] = [pscustomobject]@{
                    RequestsPerSecond = Get-Median $runs.RequestsPerSecond
                    P50Microseconds   = Get-Median $runs.P50
                    P99Microseconds   = Get-Median $runs.P99
                    Errors            = ($runs | Measure-Object Bad -Sum).Sum
                    Rounds            = @($runs.RequestsPerSecond)
                }
            }
            foreach ($target in $tlsTargets | Where-Object Name -Like 'KeyShell*') {
                if ($row.Contains('memcached -Z')) {
                    $row["Ratio $($target.Name)"] = $row[$target.Name].RequestsPerSecond / [math]::Max(1, $row['memcached -Z'].RequestsPerSecond)
                }
            }
            if ($row.Contains('baseline TLS (log on)')) {
                $row['BaselineRatio'] = $row['KeyShell TLS (log on)'].RequestsPerSecond / [math]::Max(1, $row['baseline TLS (log on)'].RequestsPerSecond)
            }
            [pscustomobject]$row
        }
    }
    finally {
        foreach ($target in $tlsTargets) {
            if ($target.Name -like 'memcached*') { $target.Process.Kill($true) } else { Stop-BenchServer $target }
        }
    }

    Write-Host ''
    Write-Host "TLS, medians of $Rounds rounds, requests/s (p50 / p99 in microseconds), keyload -t, RSA 2048 certificate made by openssl:"
    if ($tlsRows) {
        $tlsTable = foreach ($row in $tlsRows) {
            $line = [ordered]@{ Scenario = $row.Scenario }
            foreach ($target in $tlsTargets) {
                $m = $row.($target.Name)
                $line[$target.Name] = '{0,9:N0} ({1:N0}/{2:N0}){3}' -f $m.RequestsPerSecond, $m.P50Microseconds, $m.P99Microseconds, $(if ($m.Errors) { " ERR $($m.Errors)" } else { '' })
            }
            foreach ($property in $row.PSObject.Properties | Where-Object Name -Like 'Ratio *') {
                $line[($property.Name -replace '^Ratio KeyShell TLS ', 'KS/mc -Z ')] = '{0:0.00}' -f $property.Value
            }
            if ($row.PSObject.Properties['BaselineRatio']) { $line['KS/baseline log on'] = '{0:0.00}' -f $row.BaselineRatio }
            [pscustomobject]$line
        }
        $tlsTable | Format-Table -AutoSize | Out-String -Width 250 | Write-Host
    }
    foreach ($note in $tlsNotes) { Write-Host "  $note" }
}

$report = [pscustomobject]@{
    Date = [DateTime]::UtcNow.ToString('o'); Cores = [Environment]::ProcessorCount; Rounds = $Rounds
    Keyload = $keyload; Memcached = [bool]$memcached; Limitd = [bool]$limitd; Scenarios = $rows; Programmable = $programmed; Meters = $meters; Faults = $faulted; Upstream = $upstream; UpstreamLimit = $proxyLimit; UpstreamOverLimit = $frontOverLimit; UpstreamYardstick = $proxy; Console = $console; Memory = $memory; Client = $client; Generator = $generator
    Tls = [pscustomobject]@{ Keyload = $keyloadTls; Scenarios = @($tlsRows); Notes = @($tlsNotes) }
}
$json = Join-Path $OutDirectory ("bench-{0:yyyyMMdd-HHmmss}.json" -f [DateTime]::UtcNow)
$report | ConvertTo-Json -Depth 6 | Set-Content $json
Write-Host "Written: $json"

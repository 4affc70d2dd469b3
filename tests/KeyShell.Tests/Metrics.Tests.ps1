BeforeAll {
    Import-Module $env:KEYSHELL_MODULE -Force
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    $script:Directory = New-TestDirectory
    $script:Root = (Resolve-Path (Join-Path $PSScriptRoot '../..')).Path
    # A MeterListener in this (default) load context: it sees the engine's meters, loaded in KeyShell's
    # private context, only when both use the framework's Meter type.
    if (-not ('KeyShellMeterProbe' -as [type])) { Add-Type -Path (Join-Path $PSScriptRoot 'MeterProbe.cs') }
}

AfterAll { Get-KeyServer | Stop-KeyServer }

Describe 'The KeyShell.Server meter' {
    It 'agrees with Get-KeyServer''s counters after a known session' {
        $server = Start-KeyServer -Port 0 -NoLog -MaxConnections 2
        $probe = [KeyShellMeterProbe]::new('KeyShell.Server', $server.Port)
        try {
            $null = Measure-KeyServer -Port $server.Port -Count 3000 -Concurrency 2
            Invoke-RawRequest -Port $server.Port -Text "1 1`n1 x`ngarbage`n" -Lines 3 | Should -Match 'Error'
            $a = [System.Net.Sockets.TcpClient]::new('127.0.0.1', $server.Port)
            $b = [System.Net.Sockets.TcpClient]::new('127.0.0.1', $server.Port)
            try {
                Wait-Until { (Get-KeyServer -Port $server.Port).ActiveConnections -eq 2 } -Because 'two open connections'
                $probe.Current('keyshell.active_connections') | Should -Be 2
                Invoke-RawRequest -Port $server.Port -Text "1 1`n" | Should -Be "Error: server busy`n"
            }
            finally { $a.Dispose(); $b.Dispose() }
            Wait-Until { (Get-KeyServer -Port $server.Port).ActiveConnections -eq 0 } -Because 'the connections to close'

            $counters = Get-KeyServer -Port $server.Port
            $counters.Requests | Should -Be 3003
            $counters.Errors | Should -Be 2
            $probe.Sum('keyshell.connections') | Should -Be $counters.Connections
            $probe.Current('keyshell.active_connections') | Should -Be $counters.ActiveConnections
            $probe.Sum('keyshell.requests') | Should -Be $counters.Requests
            $probe.Sum('keyshell.requests|ok') | Should -Be ($counters.Requests - $counters.Errors)
            $probe.Sum('keyshell.requests|error') | Should -Be $counters.Errors
            $probe.Sum('keyshell.rejected_connections|max_connections') | Should -Be $counters.Rejected
            $counters.Rejected | Should -Be 1
            $probe.Count('keyshell.connection.duration') | Should -Be $counters.Connections
        }
        finally { $probe.Dispose(); $server | Stop-KeyServer }
    }

    It 'ships no System.Diagnostics.DiagnosticSource of its own on PowerShell 7 (the framework''s is the one listeners see)' {
        $moduleBase = Split-Path $env:KEYSHELL_MODULE
        Join-Path $moduleBase 'Dependencies/Core/System.Diagnostics.DiagnosticSource.dll' | Should -Not -Exist
        Join-Path $moduleBase 'Dependencies/Desktop/System.Diagnostics.DiagnosticSource.dll' | Should -Exist
    }
}

Describe 'The KeyShell.Client meter' {
    It 'counts Measure-KeyServer''s and Invoke-KeyClient''s requests by outcome' {
        $server = Start-KeyServer -Port 0 -NoLog
        $probe = [KeyShellMeterProbe]::new('KeyShell.Client', $server.Port)
        try {
            $result = Measure-KeyServer -Port $server.Port -Count 1000 -Concurrency 2
            $null = Invoke-KeyClient -Sequences '1 1 2 x' -Port $server.Port
            $probe.Sum('keyshell.client.requests|ok') | Should -Be ($result.Requests + 2)
            $probe.Sum('keyshell.client.requests|error') | Should -Be 1
            $probe.Count('keyshell.client.request.duration') | Should -Be ($result.Requests + 3)
        }
        finally { $probe.Dispose(); $server | Stop-KeyServer }
    }
}

Describe 'dotnet-counters' {
    BeforeAll {
        # The rows dotnet-counters collects from a process's KeyShell.Server meter in one-second intervals.
        function Invoke-DotnetCounters([int] $ProcessId, [string] $Csv, [int] $Seconds) {
            Push-Location $Root # the tool manifest (.config/dotnet-tools.json) is found from here
            try {
                $output = & dotnet dotnet-counters collect -p $ProcessId --counters KeyShell.Server --format csv -o $Csv --refresh-interval 1 --duration "00:00:00:$Seconds" 2>&1
            }
            finally { Pop-Location }
            $LASTEXITCODE | Should -Be 0 -Because "dotnet-counters said: $output"
            @(Import-Csv $Csv)
        }

        # keyshell.active_connections of one port over a few intervals. A machine too busy to run the child may
        # give no interval: then it tries again (at most three times).
        function Get-ActiveConnectionRows([int] $ProcessId, [int] $Port, [string] $Name) {
            $rows = @()
            foreach ($try in 1..3) {
                $rows = @(Invoke-DotnetCounters $ProcessId (Join-Path $Directory "$Name-$try.csv") 4 | Where-Object 'Counter Name' -Like "keyshell.active_connections*server.port=$Port]*")
                if ($rows.Count -gt 0) { break }
            }
            $rows
        }
    }

    It 'shows keyshell.active_connections of a server whose connections were open before it attached, and 0 once they closed' {
        # The child opens 8 persistent connections before any listener attaches, and closes them when told.
        $command = @'
$server = Start-KeyServer -Port 0 -NoLog
$clients = 1..8 | ForEach-Object { [System.Net.Sockets.TcpClient]::new('127.0.0.1', $server.Port) }
$deadline = [DateTime]::UtcNow.AddMinutes(1)
while ($server.ActiveConnections -ne 8 -and [DateTime]::UtcNow -lt $deadline) { Start-Sleep -Milliseconds 20 }
"READY $PID $($server.Port) $($server.ActiveConnections)"
$null = [Console]::In.ReadLine()
$clients | ForEach-Object Dispose
while ($server.ActiveConnections -ne 0 -and [DateTime]::UtcNow -lt $deadline.AddMinutes(1)) { Start-Sleep -Milliseconds 20 }
"CLOSED $($server.ActiveConnections)"
$null = [Console]::In.ReadLine()
'@
        $child = Start-ChildPwsh -Command $command -Directory $Directory
        try {
            $ready = Wait-ChildOutput $child '^READY (\d+) (\d+) (\d+)$'
            $childPid, $port = [int]$ready[1], [int]$ready[2]
            $ready[3] | Should -Be '8'

            $open = Get-ActiveConnectionRows -ProcessId $childPid -Port $port -Name 'late-open'
            $open.Count | Should -BeGreaterThan 0 -Because 'a listener that attaches to a busy server sees its connections'
            $open | ForEach-Object { [double]$_.'Mean/Increment' | Should -Be 8 }
            $open[0].Provider | Should -Be 'KeyShell.Server'

            $child.Process.StandardInput.WriteLine('close')
            (Wait-ChildOutput $child '^CLOSED (\d+)$')[1] | Should -Be '0'
            $closed = Get-ActiveConnectionRows -ProcessId $childPid -Port $port -Name 'late-closed'
            $closed.Count | Should -BeGreaterThan 0
            $closed | ForEach-Object { [double]$_.'Mean/Increment' | Should -Be 0 -Because 'never a negative number once they closed' }
        }
        finally { Stop-ChildPwsh $child }
    }

    It 'collects keyshell.requests rising from a pwsh that serves load' {
        # The child serves and loads itself without pause, for at most three minutes.
        $command = @'
$server = Start-KeyServer -Port 0 -NoLog
"READY $PID"
$null = Measure-KeyServer -Port $server.Port -Count 2000 -Concurrency 2 -ProgressAction SilentlyContinue
'LOADING'
$deadline = [DateTime]::UtcNow.AddMinutes(3)
while ([DateTime]::UtcNow -lt $deadline) { $null = Measure-KeyServer -Port $server.Port -Count 5000 -Concurrency 2 -ProgressAction SilentlyContinue }
'@
        $child = Start-ChildPwsh -Command $command -Directory $Directory
        try {
            $childPid = [int](Wait-ChildOutput $child '^READY (\d+)$')[1]
            $null = Wait-ChildOutput $child '^LOADING$'
            $rising = @()
            # Each try collects five one-second intervals of steady load; a try that saw fewer than two
            # intervals with requests (a machine too busy to run the child) is followed by another.
            foreach ($try in 1..3) {
                $rows = @(Invoke-DotnetCounters $childPid (Join-Path $Directory "counters-$try.csv") 5 | Where-Object 'Counter Name' -Like "keyshell.requests*server.port=*")
                $rising = @($rows | Where-Object { [double]$_.'Mean/Increment' -gt 0 })
                if ($rising.Count -ge 2) { break }
            }
            $rising.Count | Should -BeGreaterOrEqual 2 -Because 'keyshell.requests rose in at least two intervals'
            $rising[0].Provider | Should -Be 'KeyShell.Server'
            $rising[0].'Counter Name' | Should -Match 'keyshell\.outcome=ok'
        }
        finally { Stop-ChildPwsh $child }
    }
}

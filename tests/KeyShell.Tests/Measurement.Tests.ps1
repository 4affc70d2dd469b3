BeforeAll {
    Import-Module $env:KEYSHELL_MODULE -Force
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    $script:Server = Start-KeyServer -Port 0 -NoLog
}

AfterAll { Get-KeyServer | Stop-KeyServer }

Describe 'Measure-KeyServer -StartAt' {
    It 'waits until then, showing it in Write-Progress, and carries its window and histogram' {
        $shell = [powershell]::Create()
        try {
            # The time is taken once the module is imported: a slow import must not make the start late.
            $null = $shell.AddScript("Import-Module '$env:KEYSHELL_MODULE'; `$at = [DateTime]::UtcNow.AddSeconds(3); `$at; Measure-KeyServer -Port $($Server.Port) -Count 2000 -Concurrency 2 -StartAt `$at")
            $at, $result = $shell.Invoke()
            $shell.HadErrors | Should -BeFalse
            $result.StartTime | Should -BeGreaterOrEqual $at
            $result.StartTime.Kind | Should -Be 'Utc'
            $result.EndTime | Should -Be ($result.StartTime + $result.Elapsed)
            $result.Histogram.TotalCount | Should -Be 2000
            ($result.Timeline | Measure-Object Requests -Sum).Sum | Should -Be 2000
            @($shell.Streams.Progress | Where-Object StatusDescription -Like 'Waiting to start at *').Count | Should -BeGreaterThan 0
            $shell.Streams.Progress[-1].RecordType | Should -Be 'Completed'
            $shell.Streams.Warning.Count | Should -Be 0
        }
        finally { $shell.Dispose() }
    }

    It 'starts at once, with a warning, when the time is more than a second past' {
        $result = Measure-KeyServer -Port $Server.Port -Count 100 -StartAt (Get-Date).AddMinutes(-1) -WarningVariable warnings -WarningAction SilentlyContinue
        $result.Requests | Should -Be 100
        $warnings | Should -Match 'starting now'
    }

    It 'stops waiting when the pipeline is stopped (Ctrl+C)' {
        $shell = [powershell]::Create()
        try {
            $null = $shell.AddScript("Import-Module '$env:KEYSHELL_MODULE'; Measure-KeyServer -Port $($Server.Port) -Count 100 -StartAt (Get-Date).AddHours(1)")
            $running = $shell.BeginInvoke()
            Wait-Until { @($shell.Streams.Progress | Where-Object StatusDescription -Like 'Waiting to start at *').Count -gt 0 } -Because 'the wait to show'
            $shell.Stop()
            $running.IsCompleted | Should -BeTrue
            $shell.InvocationStateInfo.State | Should -Be 'Stopped'
        }
        finally { $shell.Dispose() }
    }
}

Describe 'Merge-KeyMeasurement' {
    It 'sums runs of this session and reads percentiles from the merged histogram' {
        $runs = 1..3 | ForEach-Object { Measure-KeyServer -Port $Server.Port -Count (1000 * $_) -Concurrency 2 }
        $merged = $runs | Merge-KeyMeasurement
        $merged.GetType().FullName | Should -Be 'KeyShell.Engine.Client.LoadResult'
        $merged.Runs | Should -Be 3
        $merged.Requests | Should -Be 6000
        $merged.Errors | Should -Be 0
        $merged.Concurrency | Should -Be 6
        $merged.StartTime | Should -Be ($runs.StartTime | Sort-Object | Select-Object -First 1)
        $merged.EndTime | Should -Be ($runs.EndTime | Sort-Object | Select-Object -Last 1)
        $merged.RequestsPerSecond | Should -Be (6000 / $merged.Elapsed.TotalSeconds)
        $merged.Max | Should -Be ($runs.Max | Sort-Object | Select-Object -Last 1)
        $merged.Histogram.TotalCount | Should -Be 6000
        ($merged.Timeline | Measure-Object Requests -Sum).Sum | Should -Be 6000
        $merged.P50 | Should -BeLessOrEqual $merged.P99
    }

    It 'merges results deserialized by Start-Job with live ones' {
        $job = Start-Job -ScriptBlock {
            param($Module, $Port)
            Import-Module $Module
            Measure-KeyServer -Port $Port -Count 1500 -Concurrency 2
        } -ArgumentList $env:KEYSHELL_MODULE, $Server.Port
        try {
            $remote = $job | Wait-Job -Timeout 120 | Receive-Job
            $remote.PSObject.TypeNames[0] | Should -Be 'Deserialized.KeyShell.Engine.Client.LoadResult'
            $remote.Histogram.TotalCount | Should -Be 1500 -Because 'the histogram''s figures travel too'
            ($remote.Timeline | Measure-Object Requests -Sum).Sum | Should -Be 1500 -Because 'the timeline travels with its seconds'
            $remote.EncodedHistogram | Should -Match '^HISTF'
            $remote.'P99.9' | Should -Be $remote.P999
            $live = Measure-KeyServer -Port $Server.Port -Count 500 -Concurrency 2
            $merged = $remote, $live | Merge-KeyMeasurement
            $merged.Requests | Should -Be 2000
            $merged.Runs | Should -Be 2
            $merged.Histogram.TotalCount | Should -Be 2000
            ($merged.Timeline | Measure-Object Requests -Sum).Sum | Should -Be 2000
            ($merged | Format-Table | Out-String) | Should -Match 'Requests/s'
            ($remote | Format-Table | Out-String) | Should -Match 'Requests/s' -Because 'deserialized results have the same view'
        }
        finally { $job | Remove-Job -Force }
    }

    It 'refuses results of different targets with MeasurementMismatch, and merges them with -Force and a warning' {
        $other = Start-KeyServer -Port 0 -NoLog
        try {
            $runs = $Server, $other | ForEach-Object { Measure-KeyServer -Port $_.Port -Count 200 }
            { $runs | Merge-KeyMeasurement } | Should -Throw -ErrorId 'MeasurementMismatch,KeyShell.Commands.MergeKeyMeasurementCommand'
            $merged = $runs | Merge-KeyMeasurement -Force -WarningVariable warnings -WarningAction SilentlyContinue
            $merged.Requests | Should -Be 400
            $warnings | Should -Match 'different targets'
        }
        finally { $other | Stop-KeyServer }
    }

    It 'refuses results of different modes with MeasurementMismatch' {
        $runs = (Measure-KeyServer -Port $Server.Port -Count 200), (Measure-KeyServer -Port $Server.Port -Count 200 -Pipeline 4)
        { $runs | Merge-KeyMeasurement } | Should -Throw -ErrorId 'MeasurementMismatch,KeyShell.Commands.MergeKeyMeasurementCommand'
    }

    It 'refuses what is not a Measure-KeyServer result with InvalidMeasurement' {
        { [pscustomobject]@{ Requests = 5 } | Merge-KeyMeasurement } | Should -Throw -ErrorId 'InvalidMeasurement,KeyShell.Commands.MergeKeyMeasurementCommand'
        { Get-Date | Merge-KeyMeasurement } | Should -Throw -ErrorId 'InvalidMeasurement,KeyShell.Commands.MergeKeyMeasurementCommand'
    }
}

Describe 'Load from several machines over PowerShell remoting' {
    BeforeAll {
        $script:Sshd = Start-TestSshd
        if ($Sshd.Reason) { Write-Host "SKIPPED the SSH remoting test: $($Sshd.Reason)" }
    }
    AfterAll { Stop-TestSshd $Sshd }

    It 'runs Measure-KeyServer in two SSH sessions and a job, all with one -StartAt, and merges the three' {
        if ($Sshd.Reason) { Set-ItResult -Skipped -Because $Sshd.Reason; return }
        $ssh = Get-TestSshParameters $Sshd
        $server = Start-KeyServer -Port 0 -NoLog
        $sessions = @()
        $job = $null
        try {
            $sessions = 1..2 | ForEach-Object { New-PSSession -HostName 127.0.0.1 @ssh -ErrorAction Stop }
            # The remote sessions and the job import the module under test by path, as a load machine
            # would import an installed KeyShell.
            Invoke-Command -Session $sessions -ScriptBlock { param($Module) Import-Module $Module } -ArgumentList $env:KEYSHELL_MODULE
            $load = { param($Module, $Port, $At) Import-Module $Module; Measure-KeyServer -Port $Port -Count 3000 -Concurrency 2 -StartAt $At -WarningAction Continue }
            # Sessions are open and imported: the slow part (starting pwsh) is behind us; the job gets time to start too.
            $at = [DateTime]::UtcNow.AddSeconds(15)
            $remote = Invoke-Command -Session $sessions -ScriptBlock $load -ArgumentList $env:KEYSHELL_MODULE, $server.Port, $at -AsJob
            $job = Start-Job -ScriptBlock $load -ArgumentList $env:KEYSHELL_MODULE, $server.Port, $at
            $results = @($remote, $job | Wait-Job -Timeout 180 | Receive-Job)
            $remote.State | Should -Be 'Completed'
            $job.State | Should -Be 'Completed'

            $results.Count | Should -Be 3
            $results | ForEach-Object { $_.PSObject.TypeNames[0] | Should -Be 'Deserialized.KeyShell.Engine.Client.LoadResult' }
            @($results.PSComputerName | Sort-Object -Unique) | Should -Contain '127.0.0.1'
            $merged = $results | Merge-KeyMeasurement
            $merged.Runs | Should -Be 3
            $merged.Requests | Should -Be (($results | Measure-Object Requests -Sum).Sum)
            $merged.Requests | Should -Be 9000
            $merged.Errors | Should -Be 0
            $server.Requests | Should -Be $merged.Requests
            $merged.Histogram.TotalCount | Should -Be 9000
            ($merged.Timeline | Measure-Object Requests -Sum).Sum | Should -Be 9000
            foreach ($result in $results) { $result.StartTime | Should -BeGreaterOrEqual $at }
            Write-Host ("Remoting: 3 generators (2 SSH sessions, 1 job) started at {0:HH:mm:ss.fff} UTC (spread {1:N0} ms); merged {2} requests, {3:N0}/s over {4:N2} s, p50 {5:N3} ms, p99 {6:N3} ms; server counted {7}." -f
                $at, (($results.StartTime | Measure-Object -Maximum).Maximum - ($results.StartTime | Measure-Object -Minimum).Minimum).TotalMilliseconds,
                $merged.Requests, $merged.RequestsPerSecond, $merged.Elapsed.TotalSeconds, $merged.P50.TotalMilliseconds, $merged.P99.TotalMilliseconds, $server.Requests)
        }
        finally {
            if ($job) { $job | Remove-Job -Force }
            if ($remote) { $remote | Remove-Job -Force }
            $sessions | Remove-PSSession
            $server | Stop-KeyServer
        }
    }
}

BeforeAll {
    Import-Module $env:KEYSHELL_MODULE -Force
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    $script:Directory = New-TestDirectory
}

AfterAll {
    Get-KeyServer | Stop-KeyServer
}

Describe 'Start-KeyServer' {
    AfterEach { Get-KeyServer | Stop-KeyServer }

    It 'returns at once with a running server object on the port it bound' {
        $server = Start-KeyServer -Port 0 -LogPath (Join-Path $Directory 'start.txt')
        $server.GetType().FullName | Should -Be 'KeyShell.Engine.Server.KeyServer'
        $server.Port | Should -BeGreaterThan 0
        $server.Address | Should -Be '127.0.0.1'
        $server.State | Should -Be 'Running'
        $server.StartTime | Should -BeOfType [datetime]
        foreach ($counter in 'Connections', 'Requests', 'Errors') { $server.$counter | Should -Be 0 }
        Test-KeyServer -Port $server.Port | Should -BeTrue
    }

    It 'has live counters' {
        $server = Start-KeyServer -Port 0 -LogPath (Join-Path $Directory 'counters.txt')
        $null = Invoke-KeyClient -Sequences '1 1 2 3', '2 42' -Port $server.Port
        $server.Requests | Should -Be 4
        $server.Errors | Should -Be 1
        $server.Connections | Should -Be 4
    }

    It 'resolves a relative log path against the PowerShell location and starts it empty' {
        Push-Location $Directory
        try {
            Set-Content -Path 'relative.txt' -Value 'old line'
            $server = Start-KeyServer -Port 0 -LogPath 'relative.txt'
            $server.LogPath | Should -Be (Join-Path $Directory 'relative.txt')
            $server | Stop-KeyServer
            Get-Content (Join-Path $Directory 'relative.txt') | Should -Be 'SYSTEM: Server launched', 'SYSTEM: Server stopped'
        }
        finally { Pop-Location }
    }

    It 'runs several servers on different ports in one session' {
        $a = Start-KeyServer -Port 0 -LogPath (Join-Path $Directory 'a.txt')
        $b = Start-KeyServer -Port 0 -LogPath (Join-Path $Directory 'b.txt')
        @(Get-KeyServer).Count | Should -Be 2
        (Get-KeyServer -Port $b.Port).Port | Should -Be $b.Port
        (Invoke-KeyClient -Sequences '1 7' -Port $a.Port).Value | Should -Be 67
        (Invoke-KeyClient -Sequences '1 8' -Port $b.Port).Value | Should -Be 90
    }

    It 'fails on a port in use with PortInUse, and leaves the other server and its log alone' {
        $first = Start-KeyServer -Port 0 -LogPath (Join-Path $Directory 'first.txt')
        $null = Invoke-KeyClient -Sequences '1 1' -Port $first.Port
        { Start-KeyServer -Port $first.Port -LogPath (Join-Path $Directory 'first.txt') } |
            Should -Throw -ErrorId 'PortInUse,KeyShell.Commands.StartKeyServerCommand'
        @(Get-KeyServer).Count | Should -Be 1
        Get-Content (Join-Path $Directory 'first.txt') | Should -Contain 'Client: 1 1'
    }

    It 'fails on an unwritable log path with LogPathUnwritable and leaves nothing listening' {
        $port = Get-FreePort
        { Start-KeyServer -Port $port -LogPath (Join-Path $Directory 'no/such/dir/log.txt') } |
            Should -Throw -ErrorId 'LogPathUnwritable,KeyShell.Commands.StartKeyServerCommand'
        Test-KeyServer -Port $port | Should -BeFalse
        @(Get-KeyServer).Count | Should -Be 0
    }

    It 'fails on a bad address with InvalidAddress' {
        { Start-KeyServer -Port 0 -Address 'not an address' -NoLog } |
            Should -Throw -ErrorId 'InvalidAddress,KeyShell.Commands.StartKeyServerCommand'
    }

    It 'fails on an address of another machine with AddressNotAvailable' {
        { Start-KeyServer -Port 0 -Address '192.0.2.1' -NoLog } |
            Should -Throw -ErrorId 'AddressNotAvailable,KeyShell.Commands.StartKeyServerCommand'
    }

    It 'warns when listening on every interface' {
        $server = Start-KeyServer -Port 0 -Address '0.0.0.0' -NoLog -WarningVariable warnings -WarningAction SilentlyContinue
        $warnings | Should -Not -BeNullOrEmpty
        $server.Address | Should -Be '0.0.0.0'
    }

    It 'shows its limits' {
        $server = Start-KeyServer -Port 0 -NoLog -MaxLineLength 200 -IdleTimeoutSec 30 -MaxConnections 50 -ShutdownTimeoutSec 2
        $server.MaxLineLength | Should -Be 200
        $server.IdleTimeout | Should -Be ([timespan]::FromSeconds(30))
        $server.MaxConnections | Should -Be 50
        $server.ShutdownTimeout | Should -Be ([timespan]::FromSeconds(2))
    }
}

Describe 'Stop-KeyServer' {
    AfterEach { Get-KeyServer | Stop-KeyServer }

    It 'stops through the pipeline' {
        $server = Start-KeyServer -Port 0 -NoLog
        Get-KeyServer | Stop-KeyServer
        $server.State | Should -Be 'Stopped'
        Test-KeyServer -Port $server.Port | Should -BeFalse
        @(Get-KeyServer).Count | Should -Be 0
    }

    It 'stops by -Port and by -All, with -PassThru' {
        $a = Start-KeyServer -Port 0 -NoLog
        $b = Start-KeyServer -Port 0 -NoLog
        $c = Start-KeyServer -Port 0 -NoLog
        (Stop-KeyServer -Port $a.Port -PassThru).Port | Should -Be $a.Port
        @(Stop-KeyServer -All -PassThru).Count | Should -Be 2
        $b.State, $c.State | Should -Be 'Stopped', 'Stopped'
    }

    It 'does nothing under -WhatIf' {
        $server = Start-KeyServer -Port 0 -NoLog
        Stop-KeyServer -InputObject $server -WhatIf
        $server.State | Should -Be 'Running'
    }

    It 'reports a port with no server as KeyServerNotFound' {
        { Stop-KeyServer -Port (Get-FreePort) -ErrorAction Stop } | Should -Throw -ErrorId 'KeyServerNotFound,KeyShell.Commands.StopKeyServerCommand'
    }

    It 'flushes the log: every request that got a reply is in the file when it returns' {
        $log = Join-Path $Directory 'flush.txt'
        $server = Start-KeyServer -Port 0 -LogPath $log
        $replies = Invoke-KeyClient -Sequences (1..20 | ForEach-Object { "$_ 1 2 3 4 5" }) -Port $server.Port -Connection Persistent
        $server | Stop-KeyServer
        $lines = Get-Content $log
        @($lines | Where-Object { $_ -like 'Server: * Response*' }).Count | Should -Be @($replies).Count
        $lines[-1] | Should -Be 'SYSTEM: Server stopped'
    }

    It 'lets a restart on the same port work right after a stop' {
        $server = Start-KeyServer -Port 0 -NoLog
        $null = Invoke-KeyClient -Sequences '1 1' -Port $server.Port -Connection Persistent
        $server | Stop-KeyServer
        $again = Start-KeyServer -Port $server.Port -NoLog
        (Invoke-KeyClient -Sequences '1 2' -Port $again.Port).Value | Should -Be 78
    }

    It 'is called for every server when the module is removed' {
        $log = Join-Path $Directory 'remove.txt'
        $server = Start-KeyServer -Port 0 -LogPath $log
        Remove-Module KeyShell
        try {
            $server.State | Should -Be 'Stopped'
            (Get-Content $log)[-1] | Should -Be 'SYSTEM: Server stopped'
        }
        finally { Import-Module $env:KEYSHELL_MODULE -Force }
    }
}

Describe 'Get-KeyServer' {
    AfterEach { Get-KeyServer | Stop-KeyServer }

    It 'lists nothing when no server runs' {
        @(Get-KeyServer).Count | Should -Be 0
    }

    It 'filters by port and errors on a port with no server' {
        $server = Start-KeyServer -Port 0 -NoLog
        (Get-KeyServer -Port $server.Port).Port | Should -Be $server.Port
        Get-KeyServer -Port (Get-FreePort) -ErrorVariable missing -ErrorAction SilentlyContinue
        $missing[0].FullyQualifiedErrorId | Should -BeLike 'KeyServerNotFound*'
    }

    It 'warns about a log that could not be written' {
        if (-not (Test-Path /dev/full)) { Set-ItResult -Skipped -Because 'there is no /dev/full on this machine (a Linux device on which every write fails)' }
        $server = Start-KeyServer -Port 0 -LogPath /dev/full
        $null = Invoke-KeyClient -Sequences '1 1 2 3' -Port $server.Port -Connection Persistent
        Wait-Until { $server.LogErrors -gt 0 } -Because 'the failed write to be counted'
        $null = Get-KeyServer -Port $server.Port -WarningVariable warnings -WarningAction SilentlyContinue
        $warnings[0] | Should -Match 'could not write its log'
        $server.LastLogError | Should -Not -BeNullOrEmpty
    }

    It 'has a default table view' {
        $null = Start-KeyServer -Port 0 -NoLog
        $text = Get-KeyServer | Out-String
        $text | Should -Match 'Port'
        $text | Should -Match 'Requests'
    }
}

Describe 'Test-KeyServer' {
    AfterEach { Get-KeyServer | Stop-KeyServer }

    It 'is true for a running server and false after a stop' {
        $server = Start-KeyServer -Port 0 -NoLog
        Test-KeyServer -Port $server.Port | Should -BeTrue
        $server | Stop-KeyServer
        Test-KeyServer -Port $server.Port | Should -BeFalse
    }

    It 'answers $false at once for a closed port' {
        # A refused connect is the answer: no waiting for the timeout, here a minute, far past the generous bound.
        $elapsed = Measure-Command { Test-KeyServer -Port (Get-FreePort) -TimeoutSec 60 | Should -BeFalse }
        $elapsed.TotalSeconds | Should -BeLessThan 10
    }

    It 'gives up on a silent server after -TimeoutSec' {
        $silent = [System.Net.Sockets.TcpListener]::new([System.Net.IPAddress]::Loopback, 0)
        $silent.Start()
        try {
            $result = Test-KeyServer -Port $silent.LocalEndpoint.Port -Detailed -TimeoutSec 1
            $result.Connected | Should -BeTrue
            $result.Reachable | Should -BeFalse -Because 'a port that takes connections and never answers is no key server'
            Test-KeyServer -Port $silent.LocalEndpoint.Port -TimeoutSec 1 | Should -BeFalse
            $result.Reply | Should -BeNullOrEmpty
            $result.Error | Should -Match 'no answer'
        }
        finally { $silent.Stop() }
    }

    It 'returns the probe''s reply and latency with -Detailed' {
        $server = Start-KeyServer -Port 0 -NoLog
        $result = Test-KeyServer -Port $server.Port -Detailed
        $result.ComputerName | Should -Be '127.0.0.1'
        $result.Port | Should -Be $server.Port
        $result.Connected | Should -BeTrue
        $result.Reachable | Should -BeTrue
        $result.Reply | Should -Be 'Response for the key 0 : 12'
        $result.Error | Should -BeNullOrEmpty
        $result.Latency | Should -BeOfType [timespan]
    }

    It 'takes servers from the pipeline' {
        $null = Start-KeyServer -Port 0 -NoLog
        Get-KeyServer | Test-KeyServer | Should -BeTrue
    }
}

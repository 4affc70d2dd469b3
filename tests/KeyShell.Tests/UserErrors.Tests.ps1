BeforeAll {
    Import-Module $env:KEYSHELL_MODULE -Force
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    $script:Directory = New-TestDirectory
    function Get-CommandError([scriptblock] $Script) { Get-CommandErrors $Script | Select-Object -First 1 }
}

AfterAll { Get-KeyServer | Stop-KeyServer }

Describe 'Two sequences with one client id' {
    AfterEach { Get-KeyServer | Stop-KeyServer }

    It 'are the terminating error DuplicateClientId in Invoke-KeyClient, naming the id and both sequences, before any traffic (<Way>)' -ForEach @(
        @{ Way = 'as -Sequences'; Run = { param($Port) Invoke-KeyClient -Sequences '2 5', '1 1 2', '1 3 4' -Port $Port } }
        @{ Way = 'from the pipeline'; Run = { param($Port) '2 5', '1 1 2', '1 3 4' | Invoke-KeyClient -Port $Port } }
    ) {
        $log = Join-Path $Directory "duplicate-$($Way -replace ' ', '-').txt"
        $server = Start-KeyServer -Port 0 -LogPath $log
        $replies = $null
        $failure = $null
        try { $replies = & $Run $server.Port } catch { $failure = $_ }
        $failure | Should -Not -BeNullOrEmpty -Because 'the error is terminating'
        $replies | Should -BeNullOrEmpty
        $failure.FullyQualifiedErrorId | Should -Be 'DuplicateClientId,KeyShell.Commands.InvokeKeyClientCommand'
        $failure.CategoryInfo.Category | Should -Be 'InvalidArgument'
        $failure.TargetObject | Should -Be '1 3 4'
        $failure.Exception.Message | Should -Match "The client id '1' has two sequences, '1 1 2' and '1 3 4'"
        $server.Connections | Should -Be 0 -Because 'nothing was sent'
        $server | Stop-KeyServer
        Get-Content $log | Should -Be 'SYSTEM: Server launched', 'SYSTEM: Server stopped'
    }

    It 'are DuplicateClientId in Test-KeyConversation -Sequences too: there is no one order to check' {
        $log = Join-Path $Directory 'check.txt'
        Set-Content -Path $log -Value 'SYSTEM: Server launched', 'SYSTEM: Server stopped'
        $failure = Get-CommandError { Test-KeyConversation -Path $log -Sequences '1 1 2', '1 3 4' }
        $failure.FullyQualifiedErrorId | Should -Be 'DuplicateClientId,KeyShell.Commands.TestKeyConversationCommand'
        $failure.Exception.Message | Should -Match "'1 1 2' and '1 3 4'"
    }
}

Describe 'A server started with -NoLog, piped to the log cmdlets' {
    AfterEach { Get-KeyServer | Stop-KeyServer }

    It 'is NoConversationLog in <_>, with the server as its target' -ForEach 'Get-KeyConversation', 'Test-KeyConversation' {
        $server = Start-KeyServer -Port 0 -NoLog
        $command = $_
        $failure = Get-CommandError { $server | & $command }
        $failure.FullyQualifiedErrorId | Should -BeLike 'NoConversationLog,*'
        $failure.CategoryInfo.Category | Should -Be 'InvalidOperation'
        $failure.TargetObject | Should -Be $server
        $failure.Exception.Message | Should -Be "The KeyServer on 127.0.0.1:$($server.Port) runs without a conversation log (it was started with -NoLog): it has no conversation to read. Start it with -LogPath to keep one."
    }

    It 'is NoConversationLog in <_> for a deserialized -NoLog server (from a job), whose LogPath is empty' -ForEach 'Get-KeyConversation', 'Test-KeyConversation' {
        $deserialized = [pscustomobject]@{ PSTypeName = 'Deserialized.KeyShell.Engine.Server.KeyServer'; Port = 8080; LogPath = $null }
        $command = $_
        $failure = Get-CommandError { $deserialized | & $command }
        $failure.FullyQualifiedErrorId | Should -BeLike 'NoConversationLog,*'
        $failure.Exception.Message | Should -Match '^The log path is empty: a KeyServer started with -NoLog keeps no conversation log'
    }

    It 'reads the log of a server that keeps one, and goes on past a -NoLog server' {
        $logged = Start-KeyServer -Port 0 -LogPath (Join-Path $Directory 'piped.txt')
        $unlogged = Start-KeyServer -Port 0 -NoLog
        $null = Invoke-KeyClient -Sequences '4 4' -Port $logged.Port
        $entries = @($unlogged, $logged | Get-KeyConversation -ErrorVariable failures -ErrorAction SilentlyContinue)
        $failures.Count | Should -Be 1
        ($entries | Where-Object Source -EQ 'Client').Key | Should -Be '4'
        $logged | Test-KeyConversation | Should -BeTrue
    }
}

Describe 'Start-KeyServer -Address for an address that is not this machine''s' {
    It 'fails with AddressNotAvailable and no warning about plain text before it' {
        # A documentation address (RFC 5737) that this machine does not have: binding fails, nothing is sent.
        $local = [System.Net.NetworkInformation.NetworkInterface]::GetAllNetworkInterfaces() | ForEach-Object { $_.GetIPProperties().UnicastAddresses } | ForEach-Object { $_.Address.ToString() }
        $foreign = '192.0.2.1', '198.51.100.1', '203.0.113.1' | Where-Object { $_ -notin $local } | Select-Object -First 1
        $failure = $null
        try { Start-KeyServer -Port 0 -Address $foreign -NoLog -WarningVariable warnings -WarningAction SilentlyContinue } catch { $failure = $_ }
        $failure.FullyQualifiedErrorId | Should -Be 'AddressNotAvailable,KeyShell.Commands.StartKeyServerCommand'
        $warnings | Should -BeNullOrEmpty
    }

    It 'still warns for a plain-text server on every interface, once it listens' {
        $server = Start-KeyServer -Port 0 -Address 0.0.0.0 -NoLog -WarningVariable warnings -WarningAction SilentlyContinue
        try { @($warnings).Count | Should -Be 1 } finally { $server | Stop-KeyServer }
    }
}

Describe 'Start-KeyServer -Wait -NoLog under load' {
    It 'counts the lines it did not show without pointing to a log it does not keep' {
        $child = Start-ChildPwsh -Directory $Directory -Command 'Start-KeyServer -Port 0 -NoLog -Wait'
        try {
            $port = [int](Wait-ChildOutput $child 'on the port (\d+)')[1]
            # 1,000 pipelined requests in one write: far more than the 100 lines a tenth of a second shows.
            $requests = -join (1..1000 | ForEach-Object { "$($_ % 50) $($_ % 10)`n" })
            $null = Invoke-RawRequest -Port $port -Text $requests -Lines 1000
            $line = (Wait-ChildOutput $child '^\[Server\] \d+ requests and connections not shown.*$')[0]
            $line | Should -Match '\(the server keeps no log: -NoLog\)\.$'
            $child.Output | Should -Not -Match 'the log has every request'
        }
        finally { Stop-ChildPwsh $child }
    }
}

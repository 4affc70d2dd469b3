BeforeAll {
    Import-Module $env:KEYSHELL_MODULE -Force
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    $script:Directory = New-TestDirectory

    # Per client id, the replies the log holds ('Server: <client> <reply>' lines).
    function Get-LoggedReplies {
        param([Parameter(Mandatory)] [string] $Path)
        $logged = @{}
        switch -Regex -File $Path { '^Server: (\S+) ' { $logged[$Matches[1]] = 1 + $logged[$Matches[1]] } }
        $logged
    }

    # A hash of the file's bytes, read as Get-Content reads (sharing it with its writer, on Windows too).
    function Get-LogHash {
        param([Parameter(Mandatory)] [string] $Path)
        $stream = [System.IO.FileStream]::new($Path, 'Open', 'Read', 'ReadWrite, Delete')
        try { [Convert]::ToHexString([System.Security.Cryptography.SHA256]::HashData($stream)) } finally { $stream.Dispose() }
    }
}

AfterAll {
    Get-KeyServer | Stop-KeyServer
}

Describe 'A log file has one owner' {
    AfterEach { Get-KeyServer | Stop-KeyServer }

    It 'two servers in one session on one log path: Test-KeyConversation finds every request of both' {
        $log = Join-Path $Directory 'two-servers.log'
        Set-Content -Path $log -Value 'SYSTEM: an old run'
        $a = Start-KeyServer -Port 0 -LogPath $log
        $b = Start-KeyServer -Port 0 -LogPath $log
        $onA = 1..4 | ForEach-Object { "a$_ " + (((0..9) * 20) -join ' ') }
        $onB = 1..4 | ForEach-Object { "b$_ " + (((9..0) * 20) -join ' ') }
        $portA, $portB = $a.Port, $b.Port
        $clients = @(
            Start-ThreadJob { Import-Module $using:env:KEYSHELL_MODULE; Invoke-KeyClient -Sequences $using:onA -Port $using:portA -Connection Persistent }
            Start-ThreadJob { Import-Module $using:env:KEYSHELL_MODULE; Invoke-KeyClient -Sequences $using:onB -Port $using:portB -Connection PerMessage }
        )
        $replies = $clients | Wait-Job -Timeout 120 | Receive-Job
        @($replies).Count | Should -Be 1600
        $a, $b | Stop-KeyServer

        $lines = Get-Content $log
        $lines[0] | Should -Be 'SYSTEM: Server launched'
        @($lines | Where-Object { $_ -eq 'SYSTEM: Server launched' }).Count | Should -Be 2
        @($lines | Where-Object { $_ -eq 'SYSTEM: Server stopped' }).Count | Should -Be 2
        $check = Test-KeyConversation -Path $log -Sequences ($onA + $onB) -Detailed
        $check.Problems | Should -BeNullOrEmpty
        $check.IsValid | Should -BeTrue
        $check.Requests | Should -Be 1600
    }

    It 'a server and Invoke-KeyClient -LogPath of one session share the file, as the seed''s do' {
        $log = Join-Path $Directory 'seed-style.log'
        $server = Start-KeyServer -Port 0 -LogPath $log
        $sequences = '1 1 2 3', '2 4 5 6', '3 7 8 9'
        $null = Invoke-KeyClient -Sequences $sequences -Port $server.Port -LogPath $log
        $server | Stop-KeyServer
        $lines = Get-Content $log
        $lines[0] | Should -Be 'SYSTEM: Server launched'
        $lines | Should -Contain 'SYSTEM: Client launched'
        $lines[-1] | Should -Be 'SYSTEM: Server stopped'
        @($lines | Where-Object { $_ -eq 'Server: 3 Response for the key 7 : 67' }).Count | Should -Be 2 # the server's line and the client's
        Test-KeyConversation -Path $log | Should -BeTrue
    }

    It 'another process gets LogPathInUse for the log, from Start-KeyServer and Invoke-KeyClient, and the log is untouched' {
        $log = Join-Path $Directory 'in-use.log'
        $server = Start-KeyServer -Port 0 -LogPath $log
        $null = Invoke-KeyClient -Sequences '1 1 2 3' -Port $server.Port -Connection Persistent
        $before = Get-LogHash $log
        $command = "Import-Module '$env:KEYSHELL_MODULE'; " +
            "try { `$null = Start-KeyServer -Port 0 -LogPath '$log'; 'server started' } catch { 'server: ' + `$_.FullyQualifiedErrorId + ' | ' + `$_.TargetObject + ' | ' + `$_.CategoryInfo.Category }; " +
            "try { `$null = Invoke-KeyClient -Sequences '9 9' -Port $($server.Port) -LogPath '$log'; 'client ran' } catch { 'client: ' + `$_.FullyQualifiedErrorId + ' | ' + `$_.TargetObject }; " +
            "try { Get-Content '$log' -TotalCount 1 } catch { 'reader: ' + `$_.FullyQualifiedErrorId }"
        $child = Invoke-ChildPwsh -Arguments '-NoProfile', '-NonInteractive', '-Command', $command
        $child.Output | Should -Contain "server: LogPathInUse,KeyShell.Commands.StartKeyServerCommand | $log | ResourceBusy"
        $child.Output | Should -Contain "client: LogPathInUse,KeyShell.Commands.InvokeKeyClientCommand | $log"
        $child.Output | Should -Contain 'SYSTEM: Server launched' # another process reads it all the same
        Get-LogHash $log | Should -Be $before
        $server.Requests | Should -Be 3 # the child's client sent nothing

        # The owner writes on.
        $null = Invoke-KeyClient -Sequences '2 4' -Port $server.Port
        Get-Content $log | Should -Contain 'Server: 2 Response for the key 4 : 56'
        $server.LogErrors | Should -Be 0
    }

    It 'the error says which file is in use and what to do' {
        $log = Join-Path $Directory 'in-use-message.log'
        $null = Start-KeyServer -Port 0 -LogPath $log
        $command = "Import-Module '$env:KEYSHELL_MODULE'; try { `$null = Start-KeyServer -Port 0 -LogPath '$log' } catch { `$_.Exception.Message }"
        $message = (Invoke-ChildPwsh -Arguments '-NoProfile', '-NonInteractive', '-Command', $command).Output -join ' '
        $message | Should -Match ([regex]::Escape($log))
        $message | Should -Match 'in use by another process'
        $message | Should -Match '-LogPath'
    }

    It 'once its owner stops, another process may take the log' {
        $log = Join-Path $Directory 'released.log'
        Start-KeyServer -Port 0 -LogPath $log | Stop-KeyServer
        $command = "Import-Module '$env:KEYSHELL_MODULE'; `$s = Start-KeyServer -Port 0 -LogPath '$log'; `$s | Stop-KeyServer; 'ok'"
        (Invoke-ChildPwsh -Arguments '-NoProfile', '-NonInteractive', '-Command', $command).Output | Should -Contain 'ok'
        Get-Content $log | Should -Be 'SYSTEM: Server launched', 'SYSTEM: Server stopped'
    }
}

Describe 'The log survives a crash of the server process' {
    # A child pwsh serves; this one's clients count every reply they receive, per client id, and kill the
    # child (SIGKILL on Linux) once a number of replies has come: under load, at no particular time.
    It 'holds every reply a client received before SIGKILL: <Connection>, <Count> sequences (run <Run>)' -ForEach @(
        foreach ($run in 1..3) {
            @{ Connection = 'Persistent'; Count = 8; KeysEach = 20000; KillAfter = 4000; Run = $run }
            @{ Connection = 'PerMessage'; Count = 64; KeysEach = 400; KillAfter = 1500; Run = $run }
        }
    ) {
        $log = Join-Path $Directory "crash-$Connection-$Run.log"
        $child = Start-ChildPwsh -Directory $Directory -Command "Start-KeyServer -Port 0 -LogPath '$log' -Wait"
        try {
            $port = [int](Wait-ChildOutput $child 'on the port (\d+)')[1]
            $keyList = ((0..9) * ($KeysEach / 10)) -join ' '
            $sequences = foreach ($c in 1..$Count) { "c$c $keyList" }
            $received = @{}
            $total = 0
            Invoke-KeyClient -Sequences $sequences -Port $port -Connection $Connection -ErrorAction SilentlyContinue | ForEach-Object {
                $received[$_.ClientId] = 1 + $received[$_.ClientId]
                if (++$total -eq $KillAfter) { $child.Process.Kill() }
            }
            $child.Process.WaitForExit(15000) | Should -BeTrue
        }
        finally { Stop-ChildPwsh $child }

        $total | Should -BeGreaterOrEqual $KillAfter
        $total | Should -BeLessThan ($Count * $KeysEach) -Because 'the kill came while replies were still flowing'
        (Get-Content $log -Tail 1) | Should -Not -Be 'SYSTEM: Server stopped' -Because 'the server was killed, not stopped'
        $logged = Get-LoggedReplies -Path $log
        $lost = foreach ($id in $received.Keys) {
            if ($logged[$id] -lt $received[$id]) { "$id received $($received[$id]) replies, the log holds $([int]$logged[$id])" }
        }
        $lost | Should -BeNullOrEmpty
    }
}

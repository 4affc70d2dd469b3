BeforeAll {
    Import-Module $env:KEYSHELL_MODULE -Force
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    $script:Directory = New-TestDirectory
    $script:SeedSequences = '1 1 2 3', '2 4 5 6', '3 7 8 9'
    $script:Values = 12, 45, 78, 23, 56, 89, 34, 67, 90, 10

    # Every reply right, and each client's replies in its own key order.
    function Assert-Replies($Replies, [string[]] $Sequences) {
        foreach ($sequence in $Sequences) {
            $client, $keys = $sequence -split ' '
            $own = @($Replies | Where-Object ClientId -EQ $client)
            $own.Index | Should -Be (0..($keys.Count - 1))
            $own.Key | Should -Be $keys
            $own.Reply | Should -Be ($keys | ForEach-Object { "Response for the key $_ : $($Values[[int]$_])" })
            $own.Value | Should -Be ($keys | ForEach-Object { $Values[[int]$_] })
        }
    }

    # The log shows each client's keys in order, each followed by its reply before the client's next key.
    function Assert-LogFifo([string] $Path, [string[]] $Sequences) {
        Test-KeyConversation -Path $Path -Sequences $Sequences | Should -BeTrue
        $lines = Get-Content $Path
        foreach ($sequence in $Sequences) {
            $client, $keys = $sequence -split ' '
            $own = @($lines | Where-Object { $_ -like "Client: $client *" -or $_ -like "Server: $client *" })
            $expected = foreach ($key in $keys) { "Client: $client $key"; "Server: $client Response for the key $key : $($Values[[int]$key])" }
            $own | Should -Be $expected
        }
    }
}

AfterAll { Get-KeyServer | Stop-KeyServer }

Describe 'Invoke-KeyClient' {
    BeforeEach {
        $script:Log = Join-Path $Directory ([guid]::NewGuid().ToString('N') + '.txt')
        $script:Server = Start-KeyServer -Port 0 -LogPath $Log
    }
    AfterEach { Get-KeyServer | Stop-KeyServer }

    It 'runs the seed''s session (<Connection>, <Framing>): every reply right, FIFO in the log' -ForEach @(
        @{ Connection = 'PerMessage'; Framing = 'Line' }
        @{ Connection = 'Persistent'; Framing = 'Line' }
        @{ Connection = 'PerMessage'; Framing = 'Legacy' }
        @{ Connection = 'Persistent'; Framing = 'Legacy' }
    ) {
        $replies = Invoke-KeyClient -Sequences $SeedSequences -Port $Server.Port -Connection $Connection -Framing $Framing
        @($replies).Count | Should -Be 9
        Assert-Replies $replies $SeedSequences
        $Server | Stop-KeyServer
        Assert-LogFifo $Log $SeedSequences
    }

    It 'runs a large session (50 sequences of 20 keys, <_>) with every reply right and FIFO in the log' -ForEach 'PerMessage', 'Persistent' {
        $sequences = foreach ($client in 1..50) { "$client " + ((0..19 | ForEach-Object { ($client * 3 + $_ * 7) % 10 }) -join ' ') }
        $replies = Invoke-KeyClient -Sequences $sequences -Port $Server.Port -Connection $_
        @($replies).Count | Should -Be 1000
        Assert-Replies $replies $sequences
        $Server | Stop-KeyServer
        Assert-LogFifo $Log $sequences
        $check = Test-KeyConversation -Path $Log -Detailed
        $check.Requests | Should -Be 1000
        $check.Replies | Should -Be 1000
    }

    It 'takes sequences from the pipeline' {
        $replies = $SeedSequences | Invoke-KeyClient -Port $Server.Port
        @($replies).Count | Should -Be 9
    }

    It 'writes the seed''s console lines with -Verbose' {
        $verbose = Invoke-KeyClient -Sequences '3 7' -Port $Server.Port -Verbose 4>&1 | Where-Object { $_ -is [System.Management.Automation.VerboseRecord] }
        $verbose.Message | Should -Be 'Client number 3 > 7', 'Serveur : Response for the key 7 : 67'
    }

    It 'writes a client-side log with -LogPath' {
        $clientLog = Join-Path $Directory 'client-side.txt'
        $null = Invoke-KeyClient -Sequences $SeedSequences -Port $Server.Port -LogPath $clientLog
        Test-KeyConversation -Path $clientLog -Sequences $SeedSequences | Should -BeTrue
    }

    It 'reports an error reply as a reply, not an error' {
        $reply = Invoke-KeyClient -Sequences '1 12' -Port $Server.Port -ErrorVariable failures
        $failures | Should -BeNullOrEmpty
        $reply.Reply | Should -Be 'Error: enter a number between 0 and 9'
        $reply.IsError | Should -BeTrue
        $reply.Value | Should -BeNullOrEmpty
    }

    It 'rejects a sequence without keys with InvalidSequence and runs the others' {
        $replies = Invoke-KeyClient -Sequences '7', '1 1' -Port $Server.Port -ErrorVariable failures -ErrorAction SilentlyContinue
        $failures[0].FullyQualifiedErrorId | Should -BeLike 'InvalidSequence*'
        @($replies).Count | Should -Be 1
    }

    It 'has a default table view' {
        Invoke-KeyClient -Sequences '1 1' -Port $Server.Port | Out-String | Should -Match 'ClientId\s+Index\s+Key'
    }
}

Describe 'Invoke-KeyClient when the server goes away' {
    It 'fails every sequence at once on a closed port, with ConnectFailed errors' {
        $port = Get-FreePort
        $elapsed = Measure-Command {
            $replies = Invoke-KeyClient -Sequences $SeedSequences -Port $port -ErrorVariable failures -ErrorAction SilentlyContinue
        }
        $replies | Should -BeNullOrEmpty
        @($failures).Count | Should -Be 3
        # The first refused connect makes the watchdog probe: the other sequences fail on their own connect,
        # or are stopped because the server is gone, whichever comes first.
        @($failures | Where-Object FullyQualifiedErrorId -Like 'ConnectFailed*').Count | Should -BeGreaterThan 0
        $failures | ForEach-Object { ($_.FullyQualifiedErrorId -split ',')[0] | Should -BeIn 'ConnectFailed', 'ServerGone' }
        $failures | ForEach-Object { $_.CategoryInfo.Category | Should -Be 'ConnectionError' }
        $failures | ForEach-Object { $_.TargetObject | Should -BeIn $SeedSequences }
        # A refused connect fails at once; a client that waited out its 10 s request timeout would not meet half
        # of it. A generous bound: it says the run ends, not how fast.
        $elapsed.TotalSeconds | Should -BeLessThan 5
    }

    It 'returns in bounded time with errors and the replies so far when the server process is killed (<_>)' -ForEach 'Persistent', 'PerMessage' {
        $child = Start-ChildPwsh -Directory $Directory -Command 'Start-KeyServer -Port 0 -NoLog -Wait'
        $shell = [powershell]::Create()
        try {
            $port = [int](Wait-ChildOutput $child 'on the port (\d+)')[1]
            # Eight sequences of 200,000 keys, and the kill as soon as 1,000 replies are in: no sequence can finish
            # first, however fast the client is (a kill after a fixed time let fast runs finish some).
            $keys = ('0 1 2 3 4 5 6 7 8 9 ' * 20000).TrimEnd()
            $sequences = 1..8 | ForEach-Object { "$_ $keys" }
            $null = $shell.AddScript("Import-Module '$env:KEYSHELL_MODULE'").AddStatement().AddCommand('Invoke-KeyClient').
                AddParameter('Sequences', $sequences).AddParameter('Port', $port).AddParameter('Connection', $_).AddParameter('ProgressAction', 'SilentlyContinue')
            $replies = [System.Management.Automation.PSDataCollection[psobject]]::new()
            $running = $shell.BeginInvoke([System.Management.Automation.PSDataCollection[psobject]]::new(), $replies)
            Wait-Until { $replies.Count -ge 1000 -or $running.IsCompleted } -Because 'the first 1,000 replies'
            $child.Process.Kill()

            # The watchdog probes every second: ten seconds is a bound that says the run ends, not how fast.
            $running.AsyncWaitHandle.WaitOne([TimeSpan]::FromSeconds(10)) | Should -BeTrue -Because 'the run must end once the server is gone'
            $failures = @($shell.Streams.Error)
            $failures.Count | Should -Be 8
            $replies.Count | Should -BeGreaterOrEqual 1000
            $replies.Count | Should -BeLessThan (8 * 200000)
            $failures | ForEach-Object { $_.FullyQualifiedErrorId | Should -BeIn 'ConnectFailed,KeyShell.Commands.InvokeKeyClientCommand', 'ConnectionLost,KeyShell.Commands.InvokeKeyClientCommand', 'ServerGone,KeyShell.Commands.InvokeKeyClientCommand' }
        }
        finally {
            $shell.Dispose()
            Stop-ChildPwsh $child
        }
    }
}

Describe 'The server over a raw TcpClient' {
    BeforeAll { $script:Server = Start-KeyServer -Port 0 -NoLog }
    AfterAll { $Server | Stop-KeyServer }

    It 'answers line framing, pipelined, in order' {
        Invoke-RawRequest -Port $Server.Port -Text "1 1`n1 2`r`n1 3`n" -Lines 3 |
            Should -Be "Response for the key 1 : 45`nResponse for the key 2 : 78`nResponse for the key 3 : 23`n"
    }

    It 'answers the seed''s legacy framing without a terminator' {
        Invoke-RawRequest -Port $Server.Port -Text '3 7' | Should -Be 'Response for the key 7 : 67'
    }

    It 'answers a bad key with the seed''s text' {
        Invoke-RawRequest -Port $Server.Port -Text "1 10`n" -Lines 1 | Should -Be "Error: enter a number between 0 and 9`n"
    }
}

Describe 'Measure-KeyServer' {
    BeforeAll { $script:Server = Start-KeyServer -Port 0 -NoLog }
    AfterAll { $Server | Stop-KeyServer }

    It 'measures <Connection> x<Concurrency>, pipeline <Pipeline>, with no errors and ordered percentiles' -ForEach @(
        @{ Connection = 'Persistent'; Concurrency = 8; Pipeline = 1 }
        @{ Connection = 'PerMessage'; Concurrency = 4; Pipeline = 1 }
        @{ Connection = 'Persistent'; Concurrency = 4; Pipeline = 16 }
    ) {
        $result = Measure-KeyServer -Port $Server.Port -Connection $Connection -Concurrency $Concurrency -Pipeline $Pipeline -Count 2000
        $result.Requests | Should -Be 2000
        $result.Errors | Should -Be 0
        $result.RequestsPerSecond | Should -BeGreaterThan 0
        $result.P50 | Should -BeLessOrEqual $result.P90
        $result.P90 | Should -BeLessOrEqual $result.P99
        $result.P99 | Should -BeLessOrEqual $result.Max
        $Server.Requests | Should -BeGreaterOrEqual 2000
    }

    It 'counts failures against a closed port, with a warning, and returns' {
        $result = Measure-KeyServer -Port (Get-FreePort) -Count 20 -Concurrency 2 -WarningVariable warnings -WarningAction SilentlyContinue
        $result.Errors | Should -Be 20
        $warnings | Should -Not -BeNullOrEmpty
    }

    It 'times out requests a server never answers, counts them as errors, and returns' {
        # A listener that accepts (in the kernel's backlog) and never answers.
        $silent = [System.Net.Sockets.TcpListener]::new([System.Net.IPAddress]::Loopback, 0)
        $silent.Start()
        try {
            $elapsed = Measure-Command {
                $result = Measure-KeyServer -Port $silent.LocalEndpoint.Port -Count 4 -Concurrency 2 -TimeoutSec 1 -WarningVariable warnings -WarningAction SilentlyContinue
            }
            $result.Requests | Should -Be 4
            $result.Errors | Should -Be 4
            $warnings | Should -Not -BeNullOrEmpty
            # Two 1 s timeouts per worker: about 2 s. Ignoring -TimeoutSec (10 s by default) would take 20 s.
            $elapsed.TotalSeconds | Should -BeLessThan 10
        }
        finally { $silent.Stop() }
    }

    It 'runs for a duration' {
        $elapsed = Measure-Command { $result = Measure-KeyServer -Port $Server.Port -Duration 1 -Concurrency 2 }
        $result.Requests | Should -BeGreaterThan 0
        $elapsed.TotalSeconds | Should -BeGreaterOrEqual 1 -Because 'a timed run lasts its duration'
        $elapsed.TotalSeconds | Should -BeLessThan 10 -Because 'it ends: ten times its duration is a bound, not a speed'
    }

    It 'rejects pipelining on PerMessage connections with InvalidLoad' {
        { Measure-KeyServer -Port $Server.Port -Connection PerMessage -Pipeline 4 -Count 10 } | Should -Throw -ErrorId 'InvalidLoad,KeyShell.Commands.MeasureKeyServerCommand'
    }
}

Describe 'Invoke-KeyClient and Ctrl+C' {
    BeforeAll { $script:Server = Start-KeyServer -Port 0 -NoLog }
    AfterAll { $Server | Stop-KeyServer }

    It 'stops promptly when the pipeline is stopped' {
        $shell = [powershell]::Create()
        try {
            # A million keys, and the stop once 100 replies are in: the run cannot finish first, however fast.
            $keys = ('0 1 2 3 4 5 6 7 8 9 ' * 100000).TrimEnd()
            $null = $shell.AddScript("Import-Module '$env:KEYSHELL_MODULE'").AddStatement().AddCommand('Invoke-KeyClient').
                AddParameter('Sequences', "1 $keys").AddParameter('Port', $Server.Port).AddParameter('Connection', 'Persistent').AddParameter('ProgressAction', 'SilentlyContinue')
            $output = [System.Management.Automation.PSDataCollection[psobject]]::new()
            $running = $shell.BeginInvoke([System.Management.Automation.PSDataCollection[psobject]]::new(), $output)
            Wait-Until { $output.Count -gt 100 } -Because 'replies to arrive'
            $null = $shell.BeginStop($null, $null)
            # Ten seconds: a bound that says the run ends (it would take minutes), not how fast. (The stop's own
            # handle can be signalled a moment before the run's: wait on the run's.)
            $running.AsyncWaitHandle.WaitOne([TimeSpan]::FromSeconds(10)) | Should -BeTrue -Because 'Ctrl+C must end the run'
            $output.Count | Should -BeLessThan 1000000
        }
        finally { $shell.Dispose() }
    }
}

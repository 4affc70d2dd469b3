BeforeAll {
    Import-Module $env:KEYSHELL_MODULE -Force
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    $script:Directory = New-TestDirectory
}

AfterAll { Get-KeyServer | Stop-KeyServer }

Describe 'Start-KeyServer -Handler' {
    AfterEach { Get-KeyServer | Stop-KeyServer }

    It 'runs handlers in parallel on several background runspaces' {
        # Each handler waits (bounded) until all four requests are inside a handler at once: only handlers that
        # run in parallel, each on its own runspace, can all report it. -ArgumentList hands them the same barrier.
        $barrier = [System.Threading.Barrier]::new(4)
        try {
            $server = Start-KeyServer -Port 0 -NoLog -ThrottleLimit 4 -ArgumentList $barrier -Handler {
                param($Request, $Barrier)
                $together = $Barrier.SignalAndWait(8000)
                "$($Request.ClientId) $([runspace]::DefaultRunspace.InstanceId) together=$together"
            }
            $replies = Invoke-KeyClient -Sequences 'a 1', 'b 1', 'c 1', 'd 1' -Port $server.Port -TimeoutSec 30 -SkipReplyCheck # the handler's own form
            @($replies).Count | Should -Be 4
            $replies | ForEach-Object { ($_.Reply -split ' ')[2] | Should -Be 'together=True' -Because 'the four requests were in handlers at once' }
            @($replies | ForEach-Object { ($_.Reply -split ' ')[1] } | Select-Object -Unique).Count | Should -Be 4
        }
        finally { $barrier.Dispose() }
    }

    It 'gives the handler the request, -ArgumentList, and what -InitializationScript defined' {
        $server = Start-KeyServer -Port 0 -NoLog -ArgumentList 1000, 'x' -InitializationScript { function Double([int] $n) { 2 * $n } } -Handler {
            param($Request, $Offset, $Suffix)
            "Response for the key $($Request.Key) : $((Double $Request.Key) + $Offset)$Suffix conn=$($Request.ConnectionId -gt 0) from=$($Request.RemoteEndPoint -like '127.0.0.1:*')"
        }
        (Invoke-KeyClient -Sequences 'ci 21' -Port $server.Port).Reply | Should -Be 'Response for the key 21 : 1042x conn=True from=True'
    }

    It 'turns a throwing handler into an error reply and keeps serving' {
        $server = Start-KeyServer -Port 0 -NoLog -Handler { param($Request) if ($Request.Key -eq 'bad') { throw 'boom' } 'ok' }
        $replies = Invoke-KeyClient -Sequences '1 bad good' -Port $server.Port -Connection Persistent -SkipReplyCheck # 'ok' is the handler's own form
        $replies.Reply | Should -Be 'Error: handler failed: boom', 'ok'
        $server.Errors | Should -Be 1
    }

    It 'stops a handler past -HandlerTimeoutSec with an error reply, and keeps serving' {
        $server = Start-KeyServer -Port 0 -NoLog -HandlerTimeoutSec 1 -ThrottleLimit 2 -Handler { param($Request) if ($Request.Key -eq 'slow') { Start-Sleep -Seconds 30 } 'quick' }
        $elapsed = Measure-Command { $replies = Invoke-KeyClient -Sequences '1 slow quick' -Port $server.Port -Connection Persistent -SkipReplyCheck }
        $replies.Reply | Should -Be 'Error: handler timed out', 'quick'
        # About 1 s; ten is a bound that says it ends, not how fast (the replies above show the timeout acted).
        $elapsed.TotalSeconds | Should -BeLessThan 10
        $server.Errors | Should -Be 1
    }

    It 'fails to start with InvalidHandler when the initialization script fails, leaving nothing listening' {
        $port = Get-FreePort
        { Start-KeyServer -Port $port -NoLog -Handler { 'x' } -InitializationScript { throw 'cannot init' } } |
            Should -Throw -ErrorId 'InvalidHandler,KeyShell.Commands.StartKeyServerCommand'
        Test-KeyServer -Port $port | Should -BeFalse
    }

    It 'logs handler replies like map replies' {
        $log = Join-Path $Directory 'handler.txt'
        $server = Start-KeyServer -Port 0 -LogPath $log -Handler { param($Request) "Response for the key $($Request.Key) : 7" }
        $null = Invoke-KeyClient -Sequences '1 a b', '2 c' -Port $server.Port
        $server | Stop-KeyServer
        Test-KeyConversation -Path $log -Sequences '1 a b', '2 c' | Should -BeTrue
    }
}

Describe 'Start-KeyServer -Handler with $using:' {
    AfterEach { Get-KeyServer | Stop-KeyServer }

    It 'gives the handler and -InitializationScript the values of $using: variables, read when the server starts' {
        $offset = 1000
        $seen = [System.Collections.Concurrent.ConcurrentBag[string]]::new()
        $suffix = 'x'
        $server = Start-KeyServer -Port 0 -NoLog -ThrottleLimit 2 -InitializationScript { $script:Tail = $using:suffix } -Handler {
            param($Request)
            $bag = $using:seen
            $bag.Add($Request.Key)
            "$([int]$Request.Key + $using:offset)$Tail $(${using:offset} -eq 1000) $($using:seen.Count -ge 1)"
        }
        $offset = 1
        (Invoke-KeyClient -Sequences 'c 5' -Port $server.Port -SkipReplyCheck).Reply | Should -Be '1005x True True' # the handler's own form
        $seen | Should -Be '5' -Because 'a $using: object is the caller''s object, as with ForEach-Object -Parallel'
    }

    It 'leaves $using: in a script block nested in the handler to that script block' {
        $server = Start-KeyServer -Port 0 -NoLog -Handler { param($Request) $key = $Request.Key; 1..2 | ForEach-Object -Parallel { "$_$using:key" } }
        (Invoke-KeyClient -Sequences 'c k' -Port $server.Port -SkipReplyCheck).Reply | Should -Be '1k 2k'
    }

    It 'is InvalidHandler at Start-KeyServer for a $using: variable that does not exist in <Where>, leaving nothing listening' -ForEach @(
        @{ Where = '-Handler'; Parameters = @{ Handler = { param($Request) "v $using:NoSuchVariable" } } }
        @{ Where = '-InitializationScript'; Parameters = @{ Handler = { 'x' }; InitializationScript = { $a = $using:NoSuchVariable } } }
    ) {
        $port = Get-FreePort
        $failure = $null
        try { Start-KeyServer -Port $port -NoLog @Parameters } catch { $failure = $_ }
        $failure.FullyQualifiedErrorId | Should -Be 'InvalidHandler,KeyShell.Commands.StartKeyServerCommand'
        $failure.CategoryInfo.Category | Should -Be 'InvalidArgument'
        $failure.Exception.Message | Should -Be "$Where uses `$using:NoSuchVariable (line 1), but there is no variable 'NoSuchVariable' where Start-KeyServer runs. A `$using: variable is read once, when the server starts: define it first, or pass the value with -ArgumentList."
        $failure.TargetObject | Should -Be $Parameters[$Where.TrimStart('-')]
        @(Get-KeyServer).Count | Should -Be 0
        Test-KeyServer -Port $port | Should -BeFalse
    }
}

Describe 'What a -Handler writes' {
    AfterEach { Get-KeyServer | Stop-KeyServer }

    It 'makes objects text as PowerShell does, joined with spaces: <Case>' -ForEach @(
        @{ Case = 'a [pscustomobject]'; Output = { [pscustomobject]@{ Key = 'a'; Value = 1 } }; Reply = '@{Key=a; Value=1}' }
        @{ Case = 'a hashtable'; Output = { [ordered]@{ Key = 'a'; Value = 1 } }; Reply = '@{Key=a; Value=1}' }
        @{ Case = 'numbers, in the invariant culture'; Output = { [cultureinfo]::CurrentCulture = 'de-DE'; 1.5; 2 }; Reply = '1.5 2' }
        @{ Case = 'a list'; Output = { , @(1, 2, 3) }; Reply = '1 2 3' }
        @{ Case = 'a date, as "$date" shows it'; Output = { [datetime]::new(2024, 1, 2, 3, 4, 5) }; Reply = '01/02/2024 03:04:05' }
        @{ Case = '$null among strings'; Output = { 'a'; $null; 'b' }; Reply = 'a b' }
        @{ Case = 'text over lines'; Output = { "two`nlines" }; Reply = 'two lines' }
    ) {
        $server = Start-KeyServer -Port 0 -NoLog -Handler $Output
        (Invoke-KeyClient -Sequences 'c 1' -Port $server.Port -SkipReplyCheck).Reply | Should -Be $Reply # the handler's own form
    }

    It 'makes an error it writes, with no output, the reply "Error: handler failed: ..."' {
        $server = Start-KeyServer -Port 0 -NoLog -Handler { param($Request) Write-Error "no value for $($Request.Key)" }
        $reply = Invoke-KeyClient -Sequences 'c 7' -Port $server.Port
        $reply.Reply | Should -Be 'Error: handler failed: no value for 7'
        $server.Errors | Should -Be 1
    }

    It 'sends errors, warnings and host lines it writes beside a reply to the server''s diagnostics' {
        $server = Start-KeyServer -Port 0 -NoLog -Handler { param($Request) Write-Error 'side effect failed'; Write-Warning 'careful'; Write-Host 'for the host'; 'the value' }
        (Invoke-KeyClient -Sequences 'c 7' -Port $server.Port -SkipReplyCheck).Reply | Should -Be 'the value'
        $server.Errors | Should -Be 0
        $verbose = Get-KeyServer -Port $server.Port -WarningVariable warnings -WarningAction SilentlyContinue -Verbose 4>&1 | Where-Object { $_ -is [System.Management.Automation.VerboseRecord] }
        $warnings.Message | Should -Contain "KeyServer 127.0.0.1:$($server.Port): The handler wrote an error for 'c 7': side effect failed"
        $warnings.Message | Should -Contain "KeyServer 127.0.0.1:$($server.Port): The handler warned, for 'c 7': careful"
        $verbose.Message | Should -Contain "KeyServer 127.0.0.1:$($server.Port): The handler, for 'c 7': for the host"
    }

    It 'keeps at most a bounded number of those lines, and says how many it did not keep' {
        $server = Start-KeyServer -Port 0 -NoLog -Handler { param($Request) Write-Warning 'again'; 'ok' }
        $null = Invoke-KeyClient -Sequences (1..12 | ForEach-Object { "c$_ " + ((1..100) -join ' ') }) -Port $server.Port -Connection Persistent -SkipReplyCheck
        $null = Get-KeyServer -Port $server.Port -WarningVariable warnings -WarningAction SilentlyContinue
        $warnings.Count | Should -Be 1001
        $warnings[-1].Message | Should -Be "KeyServer 127.0.0.1:$($server.Port): 200 more lines the handler wrote were not kept."
    }
}

Describe 'Key maps' {
    AfterEach { Get-KeyServer | Stop-KeyServer }

    It 'takes a hashtable with any tokens as keys and numbers or strings as values' {
        $server = Start-KeyServer -Port 0 -NoLog -KeyMap @{ red = '#ff0000'; 'x-1' = 42 }
        (Invoke-KeyClient -Sequences 'c red x-1 blue' -Port $server.Port -Connection Persistent).Reply |
            Should -Be 'Response for the key red : #ff0000', 'Response for the key x-1 : 42', 'Error: unknown key'
    }

    It 'reads a .json and a .psd1 file' {
        $json = Join-Path $Directory 'map.json'
        '{ "a": 1, "b": "two" }' | Set-Content $json
        $psd1 = Join-Path $Directory 'map.psd1'
        "@{ a = 3; b = 'four' }" | Set-Content $psd1
        $fromJson = Start-KeyServer -Port 0 -NoLog -KeyMap $json
        $fromPsd1 = Start-KeyServer -Port 0 -NoLog -KeyMap $psd1
        (Invoke-KeyClient -Sequences 'c a b' -Port $fromJson.Port -Connection Persistent).Reply | Should -Be 'Response for the key a : 1', 'Response for the key b : two'
        (Invoke-KeyClient -Sequences 'c a b' -Port $fromPsd1.Port -Connection Persistent).Reply | Should -Be 'Response for the key a : 3', 'Response for the key b : four'
    }

    It 'rejects a key that is not a protocol token with InvalidKeyMap' {
        { Start-KeyServer -Port 0 -NoLog -KeyMap @{ 'two words' = 1 } } | Should -Throw -ErrorId 'InvalidKeyMap,KeyShell.Commands.StartKeyServerCommand'
    }

    It 'is replaced on a running server by Set-KeyServer' {
        $server = Start-KeyServer -Port 0 -NoLog
        (Invoke-KeyClient -Sequences 'c 1' -Port $server.Port).Value | Should -Be 45
        $server | Set-KeyServer -KeyMap @{ '1' = 1000 } -PassThru | Should -Be $server
        (Invoke-KeyClient -Sequences 'c 1 2' -Port $server.Port -Connection Persistent).Reply | Should -Be 'Response for the key 1 : 1000', 'Error: unknown key'
        Set-KeyServer -Port $server.Port -KeyMap @{ '2' = 2 } -WhatIf
        (Invoke-KeyClient -Sequences 'c 2' -Port $server.Port).Reply | Should -Be 'Error: unknown key'
    }
}

Describe 'Watching a background server' {
    AfterEach {
        Get-EventSubscriber | Unregister-Event
        Get-Event | Remove-Event
        Get-KeyServer | Stop-KeyServer
    }

    It 'raises events that Register-ObjectEvent can subscribe to' {
        $server = Start-KeyServer -Port 0 -NoLog
        $null = Register-ObjectEvent -InputObject $server -EventName RequestServed -SourceIdentifier ks.request
        $null = Register-ObjectEvent -InputObject $server -EventName ClientConnected -SourceIdentifier ks.connect
        $null = Invoke-KeyClient -Sequences '7 3' -Port $server.Port
        $served = Wait-Event -SourceIdentifier ks.request -Timeout 10
        $served.SourceEventArgs.ClientId | Should -Be '7'
        $served.SourceEventArgs.Key | Should -Be '3'
        $served.SourceEventArgs.Reply | Should -Be 'Response for the key 3 : 23'
        Wait-Event -SourceIdentifier ks.connect -Timeout 10 | Should -Not -BeNullOrEmpty
    }
}

BeforeAll {
    Import-Module $env:KEYSHELL_MODULE -Force
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    $script:Directory = New-TestDirectory
    $script:SeedSequences = '1 1 2 3', '2 4 5 6', '3 7 8 9'

    # A log written by hand: the lines a faulting server writes.
    function New-Log([string] $Name, [string[]] $Lines) {
        $path = Join-Path $Directory $Name
        Set-Content -Path $path -Value $Lines
        $path
    }

    # Runs sequences against a fresh server that logs to $Name; returns the log's path.
    function Save-Conversation([string] $Name, [string[]] $Sequences, [string] $Connection = 'PerMessage', [hashtable] $KeyMap) {
        $path = Join-Path $Directory $Name
        $parameters = @{ Port = 0; LogPath = $path }
        if ($KeyMap) { $parameters.KeyMap = $KeyMap }
        $server = Start-KeyServer @parameters
        try { $null = Invoke-KeyClient -Sequences $Sequences -Port $server.Port -Connection $Connection }
        finally { $server | Stop-KeyServer }
        $path
    }

    $script:FaultedLog = @(
        'SYSTEM: Server launched'
        'SYSTEM: Client connected!'
        'Client: 3 7'
        'SYSTEM: Fault reset (3 7)'
        'SYSTEM: Client deconnected!'
        'SYSTEM: Fault refuse (connection 2)'
        'SYSTEM: Client connected!'
        'Client: 3 8'
        'SYSTEM: Fault delay (3 8)'
        'Server: 3 Response for the key 8 : 90'
        'Client: 4 1'
        'SYSTEM: Fault stall (4 1)'
        'SYSTEM: Server stopped'
    )
}

AfterAll { Get-KeyServer | Stop-KeyServer }

Describe 'Get-KeyConversation with fault lines' {
    It 'reads each fault line as a ConversationFault, in the same table as the other lines' {
        $entries = Get-KeyConversation -Path (New-Log 'faults.log' $FaultedLog)
        $faults = @($entries | Where-Object Fault)
        $faults.Count | Should -Be 4
        $faults[0].PSObject.TypeNames[0] | Should -Be 'KeyShell.Engine.Logging.ConversationFault'
        $faults[0].PSObject.TypeNames | Should -Contain 'KeyShell.Engine.Logging.ConversationEntry'
        $faults.Fault | Should -Be 'reset', 'refuse', 'delay', 'stall'
        $faults.FaultType | Should -Be 'Reset', 'Refuse', 'Delay', 'Stall'
        $faults[0].Source | Should -Be 'SYSTEM'
        $faults[0].ClientId | Should -Be '3'
        $faults[0].Key | Should -Be '7'
        $faults[0].LineNumber | Should -Be 4
        $faults[1].Connection | Should -Be 2
        $faults[1].ClientId | Should -BeNullOrEmpty
        @($entries | Where-Object { -not $_.PSObject.Properties['Fault'] }).Count | Should -Be 9

        $table = $entries | Format-Table | Out-String -Width 200
        ($table -split "`n" | Where-Object { $_ -match '^\s*-+\s' }).Count | Should -Be 1 -Because 'fault lines share the log''s table'
        $table | Should -Match 'Fault reset \(3 7\)'
    }
}

Describe 'Test-KeyConversation with fault lines' {
    It 'accounts for faulted requests and lists them with -Detailed' {
        $log = New-Log 'faults.log' $FaultedLog
        Test-KeyConversation -Path $log | Should -BeTrue
        Test-KeyConversation -Path $log -Sequences '3 7 8', '4 1' | Should -BeTrue
        $check = Test-KeyConversation -Path $log -Detailed
        $check.IsValid | Should -BeTrue
        $check.Requests | Should -Be 3
        $check.Replies | Should -Be 1
        $check.Faults | Should -Be 4
        $check.FaultedRequests.Count | Should -Be 3
        $check.FaultedRequests.Fault | Should -Be 'reset', 'delay', 'stall'
        $check.FaultedRequests[1].ReplyLine | Should -Be 10
        "$($check.FaultedRequests[0])" | Should -Be 'Line 4: client 3''s key 7 (line 3) got fault reset.'
        ($check | Format-Table | Out-String -Width 200) | Should -Match 'Faults'
    }

    It 'writes the faulted requests with -Verbose' {
        $verbose = Test-KeyConversation -Path (New-Log 'faults.log' $FaultedLog) -Verbose 4>&1 | Where-Object { $_ -is [System.Management.Automation.VerboseRecord] }
        $verbose.Message | Should -Contain 'Line 12: client 4''s key 1 (line 11) got fault stall.'
    }

    It 'finds a fault with no request, or on another key, and the same request without its fault line' {
        $check = Test-KeyConversation -Path (New-Log 'wrong.log' 'Client: 3 7', 'SYSTEM: Fault close (3 8)', 'SYSTEM: Fault reset (5 1)', 'Client: 6 2') -Detailed
        $check.IsValid | Should -BeFalse
        $check.Problems | Should -Be @(
            'Line 2: a fault (close) on client 3''s key 8, but its oldest request waiting is key 7 (line 1): out of order or wrong.'
            'Line 3: a fault (reset) on client 5''s key 1 with no request waiting for it.'
            'Line 4: client 6''s key 2 has no reply.'
        )
    }
}

Describe 'ConvertTo-KeySequence' {
    It 'gives back the sequences of a recorded session (<_>), one per client in the order of its requests' -ForEach 'PerMessage', 'Persistent' {
        $log = Save-Conversation 'recorded.log' $SeedSequences $_
        $sequences = @(Get-KeyConversation -Path $log | ConvertTo-KeySequence)
        $sequences | Sort-Object | Should -Be $SeedSequences
        $sequences | ForEach-Object { $_ | Should -BeOfType [string] }
    }

    It 'keeps faulted requests, leaves requests with no client out with a warning, and ignores other lines' {
        $log = New-Log 'mixed.log' ($FaultedLog + 'Client: no-key-here' + 'Server: ? Error: malformed request, expected ''<client> <key>''' + 'Client: 3 9')
        $warnings = $null
        $sequences = Get-KeyConversation -Path $log | ConvertTo-KeySequence -WarningVariable warnings -WarningAction SilentlyContinue
        $sequences | Should -Be '3 7 8 9', '4 1'
        @($warnings).Count | Should -Be 1
        "$($warnings[0])" | Should -Match '^Line 14 \(''Client: no-key-here''\) is a request with no valid client id'
    }

    It 'takes deserialized entries from a job' {
        $log = New-Log 'faults.log' $FaultedLog
        $job = Start-Job { param($Module, $Path) Import-Module $Module; Get-KeyConversation -Path $Path } -ArgumentList $env:KEYSHELL_MODULE, $log
        try {
            $entries = $job | Wait-Job -Timeout 60 | Receive-Job
            $entries[0].PSObject.TypeNames[0] | Should -BeLike 'Deserialized.KeyShell.Engine.Logging.*'
            $entries | ConvertTo-KeySequence | Should -Be '3 7 8', '4 1'
        }
        finally { $job | Remove-Job -Force }
    }

    It 'gives sequences Invoke-KeyClient replays as they were, escaped keys and other client ids too' {
        $sequences = '1 1 2 3', 'worker-7 0 9 a\b', '2 4 4 4'
        $map = @{ '0' = 'zero'; '1' = 'one'; '2' = 'two'; '3' = 'three'; '4' = 'four'; '9' = 'nine'; 'a\b' = 'slash' }
        $recorded = Save-Conversation 'recorded.log' $sequences 'Persistent' $map
        $replay = @(Get-KeyConversation $recorded | ConvertTo-KeySequence)
        $replay | Sort-Object | Should -Be ($sequences | Sort-Object)
        $replayed = Save-Conversation 'replayed.log' $replay 'PerMessage' $map
        Test-KeyConversation -Path $replayed -Sequences $sequences | Should -BeTrue
        Compare-KeyConversation $recorded $replayed | Should -BeNullOrEmpty
        (Get-KeyConversation $replayed | Where-Object { $_.Source -eq 'Server' -and $_.ClientId -eq 'worker-7' }).Reply | Select-Object -Last 1 | Should -Be 'Response for the key a\\b : slash' -Because 'a reply is read as it is logged, escaped'
    }
}

Describe 'Compare-KeyConversation' {
    It 'prints nothing for a replay against a server with the same map, over the other connection mode' {
        $recorded = Save-Conversation 'recorded.log' $SeedSequences 'PerMessage'
        $replay = Get-KeyConversation $recorded | ConvertTo-KeySequence
        $replayed = Save-Conversation 'replayed.log' $replay 'Persistent'
        Compare-KeyConversation -ReferencePath $recorded -DifferencePath $replayed | Should -BeNullOrEmpty
        $all = @(Compare-KeyConversation -ReferencePath $recorded -DifferencePath $replayed -IncludeEqual)
        $all.Count | Should -Be 9
        $all.SideIndicator | Select-Object -Unique | Should -Be '=='
        $all[0].PSObject.TypeNames[0] | Should -Be 'KeyShell.Engine.Logging.ConversationDifference'
    }

    It 'lists the requests a different map answers otherwise, each with both replies' {
        $recorded = Save-Conversation 'recorded.log' $SeedSequences
        $other = Save-Conversation 'other.log' (Get-KeyConversation $recorded | ConvertTo-KeySequence) -KeyMap @{
            '1' = '45'; '2' = '78'; '3' = '23'; '4' = '56'; '5' = 'five'; '6' = '34'; '7' = '67'; '8' = '90'; '9' = 'nine'
        }
        $differences = @(Compare-KeyConversation $recorded $other)
        $differences.Count | Should -Be 2
        $five = $differences | Where-Object ClientId -EQ '2'
        $five.Request | Should -Be 2
        $five.ReferenceKey | Should -Be '5'
        $five.ReferenceReply | Should -Be 'Response for the key 5 : 89'
        $five.DifferenceReply | Should -Be 'Response for the key 5 : five'
        $five.SideIndicator | Should -Be '<>'
        ($differences | Where-Object ClientId -EQ '3').Request | Should -Be 3
        ($differences | Format-Table | Out-String -Width 200) | Should -Match 'Response for the key 9 : 10 +Response for the key 9 : nine'
    }

    It 'shows requests only one log has, and faults as outcomes' {
        $reference = New-Log 'reference.log' 'Client: 3 7', 'Server: 3 Response for the key 7 : 67', 'Client: 3 8', 'Server: 3 Response for the key 8 : 90', 'Client: 4 1', 'Server: 4 Response for the key 1 : 45'
        $difference = New-Log 'difference.log' 'Client: 3 7', 'SYSTEM: Fault reset (3 7)', 'Client: 5 2', 'Server: 5 Response for the key 2 : 78', 'Client: 4 1', 'SYSTEM: Fault delay (4 1)', 'Server: 4 Response for the key 1 : 45'
        $differences = @(Compare-KeyConversation -ReferencePath $reference -DifferencePath $difference)
        $differences | ForEach-Object { "$($_.ClientId) $($_.Request) $($_.SideIndicator)" } | Should -Be '3 1 <>', '3 2 <=', '5 1 =>'
        $differences[0].DifferenceFault | Should -Be 'reset'
        $differences[0].DifferenceOutcome | Should -Be 'Fault reset'
        $differences[0].DifferenceReply | Should -BeNullOrEmpty
        $differences[1].DifferenceLine | Should -BeNullOrEmpty
        $table = $differences | Format-Table | Out-String -Width 200
        $table | Should -Match 'Fault reset'
        $table | Should -Match '\(no such request\)'
        (Compare-KeyConversation $reference $difference -IncludeEqual | Where-Object ClientId -EQ '4').DifferenceFault | Should -Be 'delay' -Because 'a delay that delivered is the same reply'
    }

    It 'ignores timestamps, connection lines and the order clients were served in' {
        $plain = New-Log 'plain.log' 'SYSTEM: Server launched', 'Client: 1 1', 'Server: 1 Response for the key 1 : 45', 'Client: 2 2', 'Server: 2 Response for the key 2 : 78'
        $stamped = New-Log 'stamped.log' '2026-11-25T20:17:30.0000000Z SYSTEM: Client connected!', '2026-11-25T20:17:30.1000000Z Client: 2 2', '2026-11-25T20:17:30.1000000Z Server: 2 Response for the key 2 : 78', '2026-11-25T20:17:30.2000000Z SYSTEM: Client deconnected!', '2026-11-25T20:17:31.0000000Z Client: 1 1', '2026-11-25T20:17:31.0000000Z Server: 1 Response for the key 1 : 45'
        Compare-KeyConversation $plain $stamped | Should -BeNullOrEmpty
    }

    It 'resolves relative paths against the PowerShell location' {
        Push-Location $Directory
        try {
            Set-Content ./relative.log 'Client: 1 1', 'Server: 1 Response for the key 1 : 45'
            @(Compare-KeyConversation ./relative.log ./relative.log -IncludeEqual).Count | Should -Be 1
        }
        finally { Pop-Location }
    }

    It 'fails with LogNotFound, naming the path given, when <_> log is missing' -ForEach 'the reference', 'the difference' {
        $present = New-Log 'present.log' 'Client: 1 1'
        $missing = Join-Path $Directory 'missing.log'
        $arguments = if ($_ -eq 'the reference') { @{ ReferencePath = $missing; DifferencePath = $present } } else { @{ ReferencePath = $present; DifferencePath = $missing } }
        $failure = try { Compare-KeyConversation @arguments; $null } catch { $_ }
        $failure.FullyQualifiedErrorId | Should -Be 'LogNotFound,KeyShell.Commands.CompareKeyConversationCommand'
        $failure.TargetObject | Should -Be $missing
    }
}

BeforeAll {
    Import-Module $env:KEYSHELL_MODULE -Force
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    $script:Directory = New-TestDirectory
    $script:Broken = Join-Path $Directory 'broken.log'
    Set-Content -Path $Broken -Value 'SYSTEM: Server launched', 'Client: 1 1', 'Server: 1 Response for the key 2 : 78', 'Client: 2 4', 'SYSTEM: Server stopped'
    $script:Faulted = Join-Path $Directory 'faulted.log'
    Set-Content -Path $Faulted -Value 'Client: 1 1', 'SYSTEM: Fault reset (1 1)', 'Client: 1 2', 'Server: 1 Response for the key 2 : 78'

    # A test file for a child pwsh: the operator on a good log, a broken one and a missing one.
    $script:OperatorTests = Join-Path $Directory 'Operator.Tests.ps1'
    Set-Content -Path $OperatorTests -Value @"
Describe 'operator' {
    It 'passes a valid log' { '$Faulted' | Should -BeValidKeyConversation -Sequences '1 1 2' }
    It 'fails a broken log' { '$Broken' | Should -BeValidKeyConversation -Because 'the server must keep order' }
    It 'negates' { '$Broken' | Should -Not -BeValidKeyConversation }
}
"@
    # Runs OperatorTests in a child pwsh with Pester $Version imported before or after KeyShell; returns the
    # result: the counts and the broken log's failure message.
    function Invoke-OperatorTests([string] $Version, [ValidateSet('Before', 'After')] [string] $Order) {
        $pester = Join-Path $env:KEYSHELL_NUGET_PACKAGES "pester/$Version/tools/Pester.psd1"
        Test-Path $pester | Should -BeTrue -Because "build.ps1 restores tests/Tools/Tools.csproj, which downloads Pester $Version"
        $imports = "Import-Module '$pester'", "Import-Module '$env:KEYSHELL_MODULE'"
        if ($Order -eq 'After') { [array]::Reverse($imports) }
        $script = ($imports -join '; ') + @"
; `$r = Invoke-Pester -Path '$OperatorTests' -PassThru -Output None
[pscustomobject]@{ Pester = (Get-Module Pester).Version.ToString(); Passed = `$r.PassedCount; Failed = `$r.FailedCount
    Message = (`$r.Failed | ForEach-Object { `$_.ErrorRecord[0].Exception.Message }) -join '|' } | ConvertTo-Json -Compress
"@
        $run = Invoke-ChildPwsh -Arguments '-NoProfile', '-NonInteractive', '-Command', $script
        $run.ExitCode | Should -Be 0 -Because ($run.Output -join "`n")
        $run.Output | Select-Object -Last 1 | ConvertFrom-Json
    }
}

AfterAll { Get-KeyServer | Stop-KeyServer }

Describe 'Use-KeyServer' {
    AfterEach { Get-KeyServer | Stop-KeyServer }

    It 'starts a server with any Start-KeyServer parameter, passes it to the block, passes the output through, and stops it' {
        $log = Join-Path $Directory 'use.log'
        $seen = @{}
        $replies = Use-KeyServer -Port 0 -LogPath $log -KeyMap @{ a = 'one'; b = 'two' } -Timestamp {
            param($Server)
            $seen.Server = $Server
            $seen.State = $Server.State
            Invoke-KeyClient -Sequences 'tester a b' -Port $Server.Port
        }
        $seen.State | Should -Be 'Running'
        $seen.Server.PSObject.TypeNames[0] | Should -Be 'KeyShell.Engine.Server.KeyServer'
        $replies.Reply | Should -Be 'Response for the key a : one', 'Response for the key b : two'
        $seen.Server.State | Should -Be 'Stopped'
        Get-KeyServer | Should -BeNullOrEmpty
        (Get-Content $log)[0] | Should -Match '^\d{4}-\d\d-\d\dT\S+Z SYSTEM: Server launched$'
        $log | Should -BeValidKeyConversation -Sequences 'tester a b'
    }

    It 'takes -Handler and its parameter set too' {
        $reply = Use-KeyServer -Port 0 -NoLog -Handler { param($Request) "handled $($Request.Key)" } -ThrottleLimit 1 {
            param($Server) (Invoke-KeyClient -Sequences '1 x' -Port $Server.Port -SkipReplyCheck).Reply # the handler's own form
        }
        $reply | Should -Be 'handled x'
    }

    It 'stops the server when the block throws, then lets the error go on' {
        $seen = @{}
        { Use-KeyServer -Port 0 -NoLog { param($Server) $seen.Server = $Server; throw 'the test failed' } } | Should -Throw -ExpectedMessage 'the test failed'
        $seen.Server.State | Should -Be 'Stopped'
        Test-KeyServer -Port $seen.Server.Port | Should -BeFalse
    }

    It 'stops the server when the pipeline is stopped (Ctrl+C) during the block' {
        $marker = Join-Path $Directory 'port.txt'
        $shell = [powershell]::Create()
        try {
            $null = $shell.AddScript("Import-Module '$env:KEYSHELL_MODULE'; Use-KeyServer -Port 0 -NoLog { param(`$Server) Set-Content -Path '$marker' -Value `$Server.Port; Start-Sleep -Seconds 600 }")
            $running = $shell.BeginInvoke()
            Wait-Until { Test-Path $marker } -Because 'the block to start'
            $port = [int](Get-Content $marker)
            Test-KeyServer -Port $port | Should -BeTrue
            $shell.Stop()
            $running.AsyncWaitHandle.WaitOne([TimeSpan]::FromSeconds(60)) | Should -BeTrue
            Test-KeyServer -Port $port | Should -BeFalse
            Get-KeyServer | Where-Object Port -EQ $port | Should -BeNullOrEmpty
        }
        finally { $shell.Dispose() }
    }

    It 'runs no block when the server cannot start, with Start-KeyServer''s error' {
        $taken = Start-KeyServer -Port 0 -NoLog
        $ran = @{}
        $failure = try { Use-KeyServer -Port $taken.Port -NoLog { $ran.Yes = $true }; $null } catch { $_ }
        $failure.FullyQualifiedErrorId | Should -BeLike 'PortInUse,*'
        $ran.Yes | Should -BeNullOrEmpty
    }

    It 'takes every Start-KeyServer parameter but -Wait, none of them positional' {
        $common = [System.Management.Automation.Cmdlet]::CommonParameters + [System.Management.Automation.Cmdlet]::OptionalCommonParameters
        $start = (Get-Command Start-KeyServer).Parameters.Keys | Where-Object { $_ -notin $common -and $_ -ne 'Wait' }
        $use = (Get-Command Use-KeyServer).Parameters
        $use.Keys | Where-Object { $_ -notin $common } | Sort-Object | Should -Be (@($start) + 'ScriptBlock' | Sort-Object)
        foreach ($name in $start) {
            $use[$name].ParameterType | Should -Be (Get-Command Start-KeyServer).Parameters[$name].ParameterType
            @($use[$name].ParameterSets.Values.Position | Where-Object { $_ -ge 0 }) | Should -BeNullOrEmpty -Because "-$name is named"
        }
        { Use-KeyServer -Port 0 -NoLog -MaxConnections 0 { } } | Should -Throw -ErrorId 'ParameterArgumentValidationError,Use-KeyServer'
    }
}

Describe 'Should -BeValidKeyConversation' {
    It 'passes a valid log, a faulted one included, given as a path, a FileInfo or a server' {
        $Faulted | Should -BeValidKeyConversation
        $Faulted | Should -BeValidKeyConversation -Sequences '1 1 2'
        Get-Item $Faulted | Should -BeValidKeyConversation
        $log = Join-Path $Directory 'server.log'
        $server = Start-KeyServer -Port 0 -LogPath $log
        $null = Invoke-KeyClient -Sequences '1 1 2 3' -Port $server.Port
        $server | Stop-KeyServer
        $server | Should -BeValidKeyConversation -Sequences '1 1 2 3'
    }

    It 'fails with the problems in its message, not "Expected $true, but got $false"' {
        $failure = try { $Broken | Should -BeValidKeyConversation -Because 'order matters'; $null } catch { $_ }
        $failure | Should -Not -BeNullOrEmpty
        $message = $failure.Exception.Message
        $message | Should -BeLike "Expected the conversation log '$Broken' to be valid, because order matters, but it has 2 problems (2 requests, 1 reply, 0 faults):*"
        $message | Should -Match ([regex]::Escape("Line 3: client 1 got 'Response for the key 2 : 78' for key 1 (line 2): out of order or wrong."))
        $message | Should -Match ([regex]::Escape("Line 4: client 2's key 4 has no reply."))
        $message | Should -Not -Match 'Expected \$true'
    }

    It 'checks -Sequences and fails a log whose keys differ' {
        { $Faulted | Should -BeValidKeyConversation -Sequences '1 1 3' } | Should -Throw -ExpectedMessage '*Client 1 sent `[1 3`] but the log shows `[1 2`].*'
    }

    It 'works with -Not' {
        $Broken | Should -Not -BeValidKeyConversation
        { $Faulted | Should -Not -BeValidKeyConversation } | Should -Throw -ExpectedMessage "Expected the conversation log '$Faulted' to have problems, but it is valid (2 requests, 1 reply, 1 fault)."
    }

    It 'fails, saying so, for a log that does not exist or no path' {
        $missing = Join-Path $Directory 'missing.log'
        { $missing | Should -BeValidKeyConversation } | Should -Throw -ExpectedMessage "Expected a conversation log at '$missing', but there is no such file."
        { $null | Should -BeValidKeyConversation } | Should -Throw -ExpectedMessage 'Expected the path of a conversation log, but got $null.'
    }

    # Pester 5.7.1 imported before KeyShell is this suite itself (the tests above).
    It 'is registered with Pester <Version> imported <Order> KeyShell' -ForEach @(
        @{ Version = '5.7.1'; Order = 'After' }
        @{ Version = '6.2.0'; Order = 'Before' }
        @{ Version = '6.2.0'; Order = 'After' }
    ) {
        $result = Invoke-OperatorTests -Version $Version -Order $Order
        $result.Pester | Should -Be $Version
        $result.Passed | Should -Be 2
        $result.Failed | Should -Be 1
        $result.Message | Should -BeLike "Expected the conversation log '$Broken' to be valid, because the server must keep order, but it has 2 problems*Line 4: client 2's key 4 has no reply.*"
    }

    It 'follows a Pester imported again with -Force, and gives the lookup hook back on Remove-Module' {
        $pester = Join-Path $env:KEYSHELL_NUGET_PACKAGES 'pester/5.7.1/tools/Pester.psd1'
        $script = @"
`$global:seen = 0
`$ExecutionContext.InvokeCommand.PostCommandLookupAction = { param(`$name, `$e) if (`$name -eq 'Get-Date') { `$global:seen++ } }
`$before = `$ExecutionContext.InvokeCommand.PostCommandLookupAction
Import-Module '$env:KEYSHELL_MODULE'
Import-Module '$pester'
`$first = (Invoke-Pester -Path '$OperatorTests' -PassThru -Output None).PassedCount
Import-Module '$pester' -Force 2>`$null
`$again = (Invoke-Pester -Path '$OperatorTests' -PassThru -Output None).PassedCount
`$null = Get-Date
`$chained = `$seen
Remove-Module KeyShell
[pscustomobject]@{ First = `$first; Again = `$again; Chained = `$chained; Restored = [object]::ReferenceEquals(`$ExecutionContext.InvokeCommand.PostCommandLookupAction, `$before) } | ConvertTo-Json -Compress
"@
        $run = Invoke-ChildPwsh -Arguments '-NoProfile', '-NonInteractive', '-Command', $script
        $result = $run.Output | Select-Object -Last 1 | ConvertFrom-Json
        $result.First | Should -Be 2
        $result.Again | Should -Be 2 -Because 'a Pester imported again is a new module, registered anew'
        $result.Chained | Should -BeGreaterOrEqual 1 -Because 'the handler that was there keeps running'
        $result.Restored | Should -BeTrue
    }
}

Describe 'docs/examples/Conversation.Tests.ps1' {
    It 'passes, as a user runs it, on Pester <_>' -ForEach '5.7.1', '6.2.0' {
        $pester = Join-Path $env:KEYSHELL_NUGET_PACKAGES "pester/$_/tools/Pester.psd1"
        $example = Join-Path $PSScriptRoot '../../docs/examples/Conversation.Tests.ps1'
        $script = "Import-Module '$pester'; `$r = Invoke-Pester -Path '$example' -PassThru -Output Detailed; 'RESULT {0} {1}' -f `$r.PassedCount, `$r.FailedCount"
        # The file imports KeyShell by name, as an installed module: the module under test is found on PSModulePath.
        $modules = Split-Path (Split-Path $env:KEYSHELL_MODULE)
        $run = Invoke-ChildPwsh -Arguments '-NoProfile', '-NonInteractive', '-Command', $script -Environment @{ PSModulePath = $modules + [System.IO.Path]::PathSeparator + $env:PSModulePath }
        $run.Output | Should -Contain 'RESULT 3 0' -Because ($run.Output -join "`n")
    }
}

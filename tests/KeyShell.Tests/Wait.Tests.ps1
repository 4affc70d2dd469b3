BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    $script:Directory = New-TestDirectory
}

Describe 'Start-KeyServer -Wait with redirected input (as in CI)' {
    It 'serves in the foreground, shows the seed''s console lines, and stops on <Signal>' -ForEach @(
        @{ Signal = 'INT' }
        @{ Signal = 'TERM' }
    ) {
        if ($IsWindows) { Set-ItResult -Skipped -Because 'Windows has no kill -s to send a signal to a process' }
        # A process started in the background by a shell without job control ignores SIGINT, and so does
        # every child it starts (an ignored signal stays ignored across exec): the child could not hear it.
        $ignored = if ($IsLinux) { Get-Content "/proc/$PID/status" | Where-Object { $_ -match '^SigIgn:\s+([0-9a-f]+)' } | ForEach-Object { [Convert]::ToUInt64($Matches[1], 16) } }
        if ($Signal -eq 'INT' -and $ignored -band 2) { Set-ItResult -Skipped -Because 'this test run ignores SIGINT (it was started in the background by a shell), and a child it starts would too' }
        $log = Join-Path $Directory "wait-$Signal.txt"
        $child = Start-ChildPwsh -Directory $Directory -Command "Start-KeyServer -Port 0 -LogPath '$log' -Wait"
        try {
            Wait-ChildOutput $child 'Server launched\.\.\. \(press Ctrl\+C to stop\)' | Out-Null
            $port = [int](Wait-ChildOutput $child 'Server waiting for connexion on the port (\d+)\.\.\.')[1]
            Invoke-RawRequest -Port $port -Text "3 7`n" -Lines 1 | Should -Be "Response for the key 7 : 67`n"
            Wait-ChildOutput $child '^Client 3 : 7$' | Out-Null
            & kill -s $Signal $child.Process.Id
            $child.Process.WaitForExit(15000) | Should -BeTrue
            (Get-Content $log)[-1] | Should -Be 'SYSTEM: Server stopped'
            Get-Content $log | Should -Contain 'Server: 3 Response for the key 7 : 67'
        }
        finally { Stop-ChildPwsh $child }
    }

    It 'ends when the server is stopped from another runspace' {
        $log = Join-Path $Directory 'wait-stop.txt'
        $command = "`$job = Start-ThreadJob { Import-Module '$env:KEYSHELL_MODULE'; `$deadline = [DateTime]::UtcNow.AddSeconds(20); " +
            "while (-not (Get-KeyServer) -and [DateTime]::UtcNow -lt `$deadline) { Start-Sleep -Milliseconds 50 }; Get-KeyServer | Stop-KeyServer }; " +
            "Start-KeyServer -Port 0 -LogPath '$log' -Wait | Out-Null; 'wait returned'; `$job | Wait-Job -Timeout 10 | Out-Null"
        $child = Start-ChildPwsh -Directory $Directory -Command $command
        try {
            Wait-ChildOutput $child '^wait returned$' | Out-Null
            $child.Process.WaitForExit(15000) | Should -BeTrue
            (Get-Content $log)[-1] | Should -Be 'SYSTEM: Server stopped'
        }
        finally { Stop-ChildPwsh $child }
    }

    It 'never reads keys when input is redirected: input on stdin does not stop it' {
        $child = Start-ChildPwsh -Directory $Directory -Command 'Start-KeyServer -Port 0 -NoLog -Wait'
        try {
            $port = [int](Wait-ChildOutput $child 'on the port (\d+)')[1]
            $child.Process.StandardInput.WriteLine('q')
            $child.Process.StandardInput.Flush()

            # The foreground loop shows a served request, then looks for a key. Once it has shown two requests
            # sent after the 'q', it has looked at least once with the 'q' waiting: had it read it, it would have
            # said "Stop asked" and stopped instead of serving the second.
            Invoke-RawRequest -Port $port -Text "1 1`n" -Lines 1 | Should -Be "Response for the key 1 : 45`n"
            Wait-ChildOutput $child '^Client 1 : 1$' | Out-Null
            Invoke-RawRequest -Port $port -Text "2 2`n" -Lines 1 | Should -Be "Response for the key 2 : 78`n"
            Wait-ChildOutput $child '^Client 2 : 2$' | Out-Null
            $child.Output | Should -Not -Contain '[Server] Stop asked...'
            $child.Process.HasExited | Should -BeFalse
        }
        finally { Stop-ChildPwsh $child }
    }
}

Describe 'Start-KeyServer -Wait in an interactive console' {
    BeforeAll {
        $script:Tmux = Get-Command tmux -CommandType Application -ErrorAction Ignore
        $script:Session = 'keyshell-' + [guid]::NewGuid().ToString('N').Substring(0, 8)
    }
    AfterAll { if ($Tmux) { & tmux kill-session -t $Session 2>$null } }

    It 'stops on the q key' {
        if ($IsWindows) { Set-ItResult -Skipped -Because 'it drives a real console through tmux, which Windows lacks' }
        if (-not $Tmux) { Set-ItResult -Skipped -Because 'tmux is not installed (.ci/run installs it where apt-get works): a real console is the only way to press a key' }
        # A real terminal (tmux) is the only way to press a key in a console host from a test.
        $log = Join-Path $Directory 'wait-q.txt'
        $pwsh = Get-PwshPath
        & tmux new-session -d -s $Session -x 160 -y 40 "$pwsh -NoProfile"
        Wait-Until { (& tmux capture-pane -t $Session -p) -match 'PS ' } -Because 'the interactive prompt'
        & tmux send-keys -t $Session "Import-Module '$env:KEYSHELL_MODULE'; Start-KeyServer -Port 0 -LogPath '$log' -Wait" Enter
        Wait-Until { (& tmux capture-pane -t $Session -p) -match "press 'q' to quit" } -Because "the 'q' prompt"
        $port = [int]([regex]::Match((& tmux capture-pane -t $Session -p) -join "`n", 'on the port (\d+)').Groups[1].Value)
        Invoke-RawRequest -Port $port -Text "3 7`n" -Lines 1 | Should -Be "Response for the key 7 : 67`n"
        & tmux send-keys -t $Session q
        Wait-Until { (& tmux capture-pane -t $Session -p) -match 'Stop asked' } -Because 'the stop message'
        Wait-Until { (Test-Path $log) -and (Get-Content $log)[-1] -eq 'SYSTEM: Server stopped' } -Because 'the log to close'
        Test-NetConnectionQuick -Port $port | Should -BeFalse
    }
}

Describe 'The supervisor example of README and about_KeyShell' {
    It 'runs as written: SIGTERM to the process a supervisor started stops the server cleanly, and pwsh ends' {
        if ($IsWindows) { Set-ItResult -Skipped -Because 'Windows has no SIGTERM and no sh'; return }
        $root = (Resolve-Path (Join-Path $PSScriptRoot '../..')).Path
        $readme = Get-Content -Raw (Join-Path $root 'README.md')
        $example = [regex]::Match($readme, '(?s)## Under a supervisor.*?```sh\r?\n(.*?)```').Groups[1].Value.Trim()
        $example | Should -Match '^PWSH=.*\n\s*exec "\$PWSH" '
        $about = Get-Content -Raw (Join-Path $root 'docs/about_KeyShell.md')
        $indented = [regex]::Match($about, '(?s)### Running under a supervisor.*?\r?\n\r?\n((?: {4}[^\n]*\n)+)').Groups[1].Value
        (($indented -split '\r?\n' | ForEach-Object { $_ -replace '^ {4}', '' }) -join "`n").Trim() | Should -Be $example -Because 'the two pages show one example'

        # As written, with a free port for 8080 and the log in this test's folder; the module is found by name, as installed.
        $port = Get-FreePort
        $log = Join-Path $Directory 'supervised.log'
        $script = Join-Path $Directory 'supervised.sh'
        Set-Content -Path $script -Value ($example -replace '\b8080\b', $port -replace '/tmp/keyshell\.log', $log)
        $info = [System.Diagnostics.ProcessStartInfo]::new('sh')
        $info.ArgumentList.Add($script)
        $info.WorkingDirectory = $root # where `dotnet pwsh` finds the tool manifest
        $info.Environment['PSModulePath'] = (Split-Path (Split-Path $env:KEYSHELL_MODULE)) + [System.IO.Path]::PathSeparator + $env:PSModulePath
        $info.RedirectStandardOutput = $true
        $info.RedirectStandardError = $true
        $info.UseShellExecute = $false
        $process = [System.Diagnostics.Process]::Start($info)
        $supervised = [pscustomobject]@{
            Process = $process
            Output  = [System.Collections.Generic.List[string]]::new()
            Reads   = @($process.StandardOutput.ReadLineAsync(), $process.StandardError.ReadLineAsync())
        }
        try {
            Wait-ChildOutput $supervised "Server waiting for connexion on the port $port\.\.\." | Out-Null
            Invoke-RawRequest -Port $port -Text "3 7`n" -Lines 1 | Should -Be "Response for the key 7 : 67`n"
            # exec made the process the supervisor started pwsh itself: the signal goes to it.
            (Get-Content -Raw "/proc/$($process.Id)/cmdline") -split "`0" | Select-Object -First 1 | Should -Match 'pwsh$'
            & kill -s TERM $process.Id
            $process.WaitForExit(30000) | Should -BeTrue -Because 'pwsh ends on SIGTERM'
            (Get-Content $log)[-1] | Should -Be 'SYSTEM: Server stopped'
            Get-Content $log | Should -Contain 'Server: 3 Response for the key 7 : 67'
            Test-NetConnectionQuick -Port $port | Should -BeFalse -Because 'nothing is left serving the port'
        }
        finally { Stop-ChildPwsh $supervised }
    }
}

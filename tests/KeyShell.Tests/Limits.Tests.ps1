BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    $script:Directory = New-TestDirectory

    function Connect-Raw([int] $Port) {
        $socket = [System.Net.Sockets.Socket]::new('InterNetwork', 'Stream', 'Tcp')
        $socket.ReceiveTimeout = 15000
        $socket.Connect('127.0.0.1', $Port)
        $socket
    }

    function Receive-Line([System.Net.Sockets.Socket] $Socket) {
        $buffer = [byte[]]::new(256)
        $text = ''
        while (-not $text.EndsWith("`n")) {
            $count = $Socket.Receive($buffer)
            if ($count -eq 0) { break }
            $text += [System.Text.Encoding]::ASCII.GetString($buffer, 0, $count)
        }
        $text
    }
}

Describe 'A server out of file descriptors' {
    # prlimit lowers the limit of the running server process: the kernel still completes the connects
    # (they wait in the listen backlog), but the server cannot accept them until descriptors are free.
    It 'keeps serving, reports the failure, and accepts the waiting clients once descriptors are free' {
        if (-not $IsLinux) { Set-ItResult -Skipped -Because 'it lowers a running process''s descriptor limit with Linux''s prlimit' }
        if (-not (Get-Command prlimit -ErrorAction Ignore)) { Set-ItResult -Skipped -Because 'prlimit (util-linux) is not installed' }
        $command = "`$s = Start-KeyServer -Port 0 -NoLog; 'PORT ' + `$s.Port; `$null = [Console]::In.ReadLine(); " +
            "'ERRORS ' + `$s.InternalErrors + ' REQUESTS ' + `$s.Requests; `$s | Stop-KeyServer; 'STOPPED'"
        $child = Start-ChildPwsh -Directory $Directory -Command $command
        $sockets = [System.Collections.Generic.List[System.Net.Sockets.Socket]]::new()
        try {
            $port = [int](Wait-ChildOutput $child '^PORT (\d+)$')[1]
            $open = @(Get-ChildItem "/proc/$($child.Process.Id)/fd").Count
            $limit = $open + 20
            & prlimit --pid $child.Process.Id "--nofile=$($limit):$($limit)"
            $LASTEXITCODE | Should -Be 0
            $shortage = [System.Diagnostics.Stopwatch]::StartNew()

            foreach ($i in 1..60) {
                $socket = Connect-Raw $port
                $socket.Send([System.Text.Encoding]::ASCII.GetBytes("$i $($i % 10)`n")) | Out-Null
                $sockets.Add($socket)
            }

            # The first ones fit under the limit and are answered.
            Receive-Line $sockets[0] | Should -Be "Response for the key 1 : 45`n"

            # A shortage that lasts: the loops retry every 10 ms. Retrying once ran a timer callback on a
            # new thread-pool thread, and starting a thread without descriptors crashed the process. No event
            # marks "survived": the sleep is the exposure (a slower machine retries less often in it).
            Start-Sleep -Seconds 3
            $child.Process.HasExited | Should -BeFalse -Because 'a server out of descriptors keeps running'

            # Closing them frees descriptors: every client still waiting is then accepted and answered.
            foreach ($socket in $sockets.GetRange(0, 30)) { $socket.Dispose() }
            foreach ($i in 31..60) {
                Receive-Line $sockets[$i - 1] | Should -Be ("Response for the key {0} : {1}`n" -f ($i % 10), (12, 45, 78, 23, 56, 89, 34, 67, 90, 10)[$i % 10])
                $sockets[$i - 1].Dispose()
            }
            $shortage.Stop() # every waiting client is answered: the shortage is over

            $child.Process.StandardInput.WriteLine()
            $stats = Wait-ChildOutput $child '^ERRORS (\d+) REQUESTS (\d+)$'
            [int]$stats[1] | Should -BeGreaterThan 0 -Because 'running out of descriptors is reported'
            # Once a second over the shortage, however long this machine made it last, not at every retry (100 a second).
            [int]$stats[1] | Should -BeLessOrEqual ([math]::Ceiling($shortage.Elapsed.TotalSeconds) + 1) -Because "it is reported once a second, not at every retry ($($shortage.Elapsed) of shortage)"
            Wait-ChildOutput $child '^STOPPED$' | Out-Null
        }
        finally {
            $sockets | ForEach-Object { $_.Dispose() }
            Stop-ChildPwsh $child
        }
    }
}

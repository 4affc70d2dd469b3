BeforeAll {
    Import-Module $env:KEYSHELL_MODULE -Force
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    $script:Directory = New-TestDirectory

    # A client that writes 1 MB of requests with a 4 KiB receive buffer and never reads a reply.
    function New-StalledClient([int] $Port) {
        $socket = [System.Net.Sockets.Socket]::new('InterNetwork', 'Stream', 'Tcp')
        $socket.ReceiveBufferSize = 4096
        $socket.Connect([System.Net.IPAddress]::Loopback, $Port)
        $requests = [System.Text.Encoding]::ASCII.GetBytes(('1 1' + "`n") * 262144)
        # Blocks once the server stops reading; ends (with an error) when the server closes the connection.
        [pscustomobject]@{ Socket = $socket; Sending = $socket.SendAsync([ArraySegment[byte]]::new($requests), 'None') }
    }
}

AfterAll { Get-KeyServer | Stop-KeyServer }

Describe 'Clients that do not read their replies' {
    AfterEach { Get-KeyServer | Stop-KeyServer }

    It 'are closed after -IdleTimeoutSec, say so in the log and in Get-KeyServer -Verbose, and free their slots' {
        $log = Join-Path $Directory 'stalled.txt'
        $server = Start-KeyServer -Port 0 -LogPath $log -MaxConnections 4 -IdleTimeoutSec 2
        $clients = 1..4 | ForEach-Object { New-StalledClient $server.Port }
        try {
            Wait-Until { $server.IdleClosed -eq 4 -and $server.ActiveConnections -eq 0 } -Because 'the four stalled clients to be closed'
            # The server's news reaches the user with the next command that touches it (here, as verbose lines).
            $output = Get-KeyServer -Port $server.Port -Verbose 4>&1
            ($output | Where-Object { $_ -isnot [System.Management.Automation.VerboseRecord] }).ActiveConnections | Should -Be 0
            $verbose = $output | Where-Object { $_ -is [System.Management.Automation.VerboseRecord] }
            @($verbose | Where-Object Message -Match 'did not read its replies for 2 s').Count | Should -Be 4
            (Invoke-KeyClient -Sequences '9 7' -Port $server.Port).Reply | Should -Be 'Response for the key 7 : 67'
            $server.Rejected | Should -Be 0
        }
        finally { $clients | ForEach-Object { $_.Socket.Dispose() } }
        Wait-Until { -not ($clients.Sending | Where-Object { -not $_.IsCompleted }) } -Because 'the stalled clients'' sends to end once their connections closed'

        Stop-KeyServer -InputObject $server
        # The log holds every request the server read before the clients stalled: hundreds of thousands of lines.
        @([System.IO.File]::ReadAllLines($log) -eq 'SYSTEM: Client closed (replies not read)').Count | Should -Be 4
        Test-KeyConversation -Path $log | Should -BeTrue
    }
}

Describe 'A -Handler request that times out while queued' {
    AfterEach { Get-KeyServer | Stop-KeyServer }

    It 'is never run once its client had the timeout error' -Skip:(-not (Get-Command mkfifo -ErrorAction Ignore)) {
        # One handler runspace. 'hold' blocks it in a .NET call (reading a FIFO) that no pipeline stop can
        # interrupt, so 'mark' waits in the queue past its timeout; 'mark' would leave a file if it ever ran.
        $fifo = Join-Path $Directory 'release.fifo'
        $holding = Join-Path $Directory 'holding.txt'
        $marker = Join-Path $Directory 'marked.txt'
        & mkfifo $fifo
        $server = Start-KeyServer -Port 0 -NoLog -ThrottleLimit 1 -HandlerTimeoutSec 1 -ArgumentList $fifo, $holding, $marker -Handler {
            param($Request, $Fifo, $Holding, $Marker)
            switch ($Request.Key) {
                'hold' { Set-Content -Path $Holding -Value 'in the handler'; [System.IO.File]::ReadAllText($Fifo) }
                'mark' { Set-Content -Path $Marker -Value 'ran'; 'marked' }
                default { 'ok' }
            }
        }
        $port = $server.Port
        $module = $env:KEYSHELL_MODULE
        $holder = Start-ThreadJob { Import-Module $using:module; Invoke-KeyClient -Sequences 'a hold' -Port $using:port -TimeoutSec 60 }
        Wait-Until { Test-Path $holding } -Because 'the only handler runspace to be held'
        (Invoke-KeyClient -Sequences 'b mark' -Port $server.Port -TimeoutSec 60).Reply | Should -Be 'Error: handler timed out'
        [System.IO.File]::WriteAllText($fifo, 'released') # the holding handler returns; the worker takes the queue
        ($holder | Wait-Job -Timeout 30 | Receive-Job).Reply | Should -Be 'Error: handler timed out'
        (Invoke-KeyClient -Sequences 'c after' -Port $server.Port -TimeoutSec 60 -SkipReplyCheck).Reply | Should -Be 'ok' # the handler's own form
        Test-Path $marker | Should -BeFalse -Because 'a request given up in the queue must not run later'
    }
}

BeforeAll {
    Import-Module $env:KEYSHELL_MODULE -Force
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    $script:Directory = New-TestDirectory
}

AfterAll { Get-KeyServer | Stop-KeyServer }

Describe 'Stop-KeyServer interrupted by Ctrl+C' {
    It 'returns at once, aborts the busy connection, flushes the log, says so, and leaves the server stopped' {
        $log = Join-Path $Directory 'interrupted.txt'
        $started = Join-Path $Directory 'handler-started.txt'
        # A handler that is busy for ten minutes with a request, under a shutdown timeout of an hour: a
        # stop would wait that long for it, unless Ctrl+C cuts it short.
        $server = Start-KeyServer -Port 0 -LogPath $log -ShutdownTimeoutSec 3600 -ArgumentList $started -Handler {
            param($Request, $Started)
            Set-Content -Path $Started -Value $Request.Key
            Start-Sleep -Seconds 600
            'too late'
        }
        $client = [System.Net.Sockets.TcpClient]::new()
        $stopper = $null
        try {
            $client.Connect([System.Net.IPAddress]::Loopback, $server.Port)
            $bytes = [System.Text.Encoding]::ASCII.GetBytes("1 1`n")
            $client.GetStream().Write($bytes, 0, $bytes.Length)
            Wait-Until { Test-Path $started } -Because 'the handler to be busy with the request'

            # Stop-KeyServer in a pipeline of its own, stopped as Ctrl+C stops the prompt's.
            $stopper = [powershell]::Create()
            $null = $stopper.AddCommand('Import-Module').AddParameter('Name', $env:KEYSHELL_MODULE).AddStatement()
            $null = $stopper.AddCommand('Stop-KeyServer').AddParameter('Port', $server.Port)
            $running = $stopper.BeginInvoke()
            Wait-Until { $server.State -eq 'Stopping' } -Because 'the stop to begin'
            $stopper.Stop() # returns once the pipeline has stopped: what Ctrl+C does at the prompt
            Wait-Until { $running.IsCompleted } -Because "the stopped pipeline to complete"
            Wait-Until { $server.State -eq 'Stopped' } -Because 'the server to be stopped'
            $server.StopAbandoned | Should -BeTrue
            Get-KeyServer | Where-Object Port -EQ $server.Port | Should -BeNullOrEmpty
            (Get-Content $log)[-1] | Should -Be 'SYSTEM: Server stopped'
            Get-Content $log | Should -Contain 'SYSTEM: Client deconnected!'
            Get-Content $log | Should -Not -Contain 'Server: 1 too late'
        }
        finally {
            $client.Dispose()
            if ($stopper) { $stopper.Dispose() }
        }
    }

    It 'without Ctrl+C still waits for the busy connection within -ShutdownTimeoutSec' {
        $started = Join-Path $Directory 'handler-started-2.txt'
        $server = Start-KeyServer -Port 0 -NoLog -ShutdownTimeoutSec 30 -ArgumentList $started -Handler {
            param($Request, $Started)
            Set-Content -Path $Started -Value $Request.Key
            Start-Sleep -Milliseconds 300
            "Response for the key $($Request.Key) : done"
        }
        $answer = Start-ThreadJob -ArgumentList $server.Port {
            param($Port)
            $client = [System.Net.Sockets.TcpClient]::new()
            $client.Connect([System.Net.IPAddress]::Loopback, $Port)
            $bytes = [System.Text.Encoding]::ASCII.GetBytes("1 1`n")
            $stream = $client.GetStream()
            $stream.Write($bytes, 0, $bytes.Length)
            $reader = [System.IO.StreamReader]::new($stream)
            $reader.ReadLine()
            $client.Dispose()
        }
        Wait-Until { Test-Path $started } -Because 'the handler to be busy with the request'
        $warnings = Stop-KeyServer -InputObject $server 3>&1
        $warnings | Should -BeNullOrEmpty
        $server.StopAbandoned | Should -BeFalse
        $answer | Wait-Job -Timeout 15 | Receive-Job | Should -Be 'Response for the key 1 : done'
    }
}

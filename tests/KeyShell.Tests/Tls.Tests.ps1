# End to end: a KeyShell server with TLS, mutual TLS and address rules, driven by clients no one here wrote
# (openssl s_client), by raw sockets and by KeyShell's own client cmdlets.

BeforeDiscovery {
    $noOpenSsl = -not (Get-Command openssl -CommandType Application -ErrorAction Ignore)
    if ($noOpenSsl) {
        Write-Host 'Tls.Tests.ps1: openssl is not installed (.ci/run installs it): the tests that need openssl s_client or its certificates are skipped.'
    }
}

BeforeAll {
    Import-Module $env:KEYSHELL_MODULE -Force
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    $script:Directory = New-TestDirectory
    $script:Certificates = if (Get-OpenSsl) { New-TestCertificates -Directory (New-TestDirectory) }

    # A certificate made by .NET, for tests about the server rather than about a foreign client.
    function New-ServerCertificate {
        $key = [System.Security.Cryptography.ECDsa]::Create()
        $request = [System.Security.Cryptography.X509Certificates.CertificateRequest]::new('CN=localhost', $key, 'SHA256')
        $request.CreateSelfSigned((Get-Date).AddDays(-1), (Get-Date).AddDays(30))
    }

    function New-LogPath { Join-Path $Directory ('log-' + [guid]::NewGuid().ToString('N') + '.txt') }

    # Stops the server and returns its log, every line (the stop flushes it).
    function Stop-AndReadLog($Server) {
        $Server | Stop-KeyServer
        @(Get-Content $Server.LogPath)
    }

    # A raw TCP connection to 127.0.0.1 (or $Address), with bounded reads.
    function Connect-Raw([int] $Port, [string] $Address = '127.0.0.1') {
        $ip = [System.Net.IPAddress]::Parse($Address)
        $socket = [System.Net.Sockets.Socket]::new($ip.AddressFamily, 'Stream', 'Tcp')
        $socket.ReceiveTimeout = 20000
        $socket.Connect($ip, $Port)
        $socket
    }

    # Reads until the server closes the connection (a reset counts as closed); returns what was read.
    function Read-UntilClosed([System.Net.Sockets.Socket] $Socket) {
        $buffer = [byte[]]::new(4096)
        $received = [System.Collections.Generic.List[byte]]::new()
        try {
            while (($count = $Socket.Receive($buffer)) -gt 0) { $received.AddRange([byte[]]$buffer[0..($count - 1)]) }
        }
        catch [System.Net.Sockets.SocketException] {
            if ($_.Exception.SocketErrorCode -eq 'TimedOut') { throw 'The server did not close the connection within 20 s.' }
        }
        [System.Text.Encoding]::ASCII.GetString($received.ToArray())
    }

    # A TLS connection from .NET that keeps the server's certificate (the test checks which one was served).
    function Connect-Tls([int] $Port) {
        $tcp = [System.Net.Sockets.TcpClient]::new('127.0.0.1', $Port)
        $ssl = [System.Net.Security.SslStream]::new($tcp.GetStream(), $false, { $true })
        $ssl.ReadTimeout = 20000
        $ssl.AuthenticateAsClient('localhost')
        [pscustomobject]@{ Tcp = $tcp; Ssl = $ssl; Thumbprint = [System.Security.Cryptography.X509Certificates.X509Certificate2]::new($ssl.RemoteCertificate).Thumbprint }
    }

    function Send-TlsLine($Connection, [string] $Line) {
        $bytes = [System.Text.Encoding]::ASCII.GetBytes("$Line`n")
        $Connection.Ssl.Write($bytes, 0, $bytes.Length)
        $buffer = [byte[]]::new(256)
        $text = ''
        while (-not $text.EndsWith("`n")) {
            $count = $Connection.Ssl.Read($buffer, 0, $buffer.Length)
            if ($count -le 0) { break }
            $text += [System.Text.Encoding]::ASCII.GetString($buffer, 0, $count)
        }
        $text.TrimEnd("`n")
    }

    # Runs $Script, which is to fail (terminating or not); returns its first error record.
    function Get-CommandError([scriptblock] $Script) {
        $records = try { & $Script 2>&1 } catch { $_ }
        @($records) | Where-Object { $_ -is [System.Management.Automation.ErrorRecord] } | Select-Object -First 1
    }

    # The conversation of one connection, as the log shows it for plain text and for TLS alike.
    $script:Conversation = @(
        'SYSTEM: Server launched'
        'SYSTEM: Client connected!'
        'Client: 1 7'
        'Server: 1 Response for the key 7 : 67'
        'Client: 2 3'
        'Server: 2 Response for the key 3 : 23'
        'Client: 9 x'
        'Server: 9 Error: enter a number between 0 and 9'
        'SYSTEM: Client deconnected!'
        'SYSTEM: Server stopped'
    )
}

AfterAll {
    Get-KeyServer | Stop-KeyServer
}

Describe 'A TLS server, through openssl s_client' -Skip:$noOpenSsl {
    AfterEach { Get-KeyServer | Stop-KeyServer }

    It 'speaks <Protocol>, line framed, and logs the conversation exactly as for plain text' -ForEach @(
        @{ Protocol = 'TLSv1.2'; Flag = '-tls1_2' }
        @{ Protocol = 'TLSv1.3'; Flag = '-tls1_3' }
    ) {
        $tls = Start-KeyServer -Port 0 -LogPath (New-LogPath) -CertificatePath $Certificates.ServerCombined
        $plain = Start-KeyServer -Port 0 -LogPath (New-LogPath)

        $client = Start-TlsClient -Port $tls.Port -Arguments $Flag
        Send-TlsClient $client "1 7`n"
        $null = Wait-TlsClient $client -Pattern "67`n$"
        Send-TlsClient $client "2 3`n9 x`n"
        $received = Wait-TlsClient $client -Pattern "9`n$"
        $handshake = Stop-TlsClient $client
        $received | Should -BeExactly "Response for the key 7 : 67`nResponse for the key 3 : 23`nError: enter a number between 0 and 9`n"
        $handshake | Should -Match "Protocol version: $Protocol"

        # The same three requests over plain text, in one connection.
        $plainClient = Connect-Raw $plain.Port
        try {
            $null = $plainClient.Send([System.Text.Encoding]::ASCII.GetBytes("1 7`n2 3`n9 x`n"))
            $plainClient.Shutdown('Send')
            $null = Read-UntilClosed $plainClient
        }
        finally { $plainClient.Dispose() }

        Wait-Until { $tls.ActiveConnections -eq 0 } -Because 'the TLS connection to close'
        $tls.Requests | Should -Be 3
        $tls.Errors | Should -Be 1
        $tls.Connections | Should -Be 1
        $tls.Rejected | Should -Be 0
        $tlsLog = Stop-AndReadLog $tls
        $plainLog = Stop-AndReadLog $plain
        $tlsLog | Should -Be $Conversation
        $plainLog | Should -Be $Conversation -Because 'the same requests in plain text log the same lines'
    }

    It 'answers legacy framing over TLS: one read, one request, no terminator' {
        $server = Start-KeyServer -Port 0 -LogPath (New-LogPath) -CertificatePath $Certificates.ServerCombined
        $client = Start-TlsClient -Port $server.Port
        Send-TlsClient $client '1 7'
        $null = Wait-TlsClient $client -Pattern '67$'
        Send-TlsClient $client '2 3'
        $received = Wait-TlsClient $client -Pattern '23$'
        $null = Stop-TlsClient $client
        $received | Should -BeExactly 'Response for the key 7 : 67Response for the key 3 : 23'
        Wait-Until { $server.ActiveConnections -eq 0 } -Because 'the connection to close'
        Stop-AndReadLog $server | Should -Be @(
            'SYSTEM: Server launched', 'SYSTEM: Client connected!'
            'Client: 1 7', 'Server: 1 Response for the key 7 : 67', 'Client: 2 3', 'Server: 2 Response for the key 3 : 23'
            'SYSTEM: Client deconnected!', 'SYSTEM: Server stopped')
    }

    It 'sends the chain of a full-chain file, so a client that trusts the authority verifies it' {
        $fullChain = Join-Path $Directory 'fullchain.pem'
        Set-Content $fullChain ((Get-Content -Raw $Certificates.Server) + (Get-Content -Raw $Certificates.Ca) + (Get-Content -Raw $Certificates.ServerKey))
        $server = Start-KeyServer -Port 0 -NoLog -CertificatePath $fullChain
        $client = Start-TlsClient -Port $server.Port -Arguments '-CAfile', $Certificates.Ca, '-verify_return_error', '-verify_hostname', 'localhost'
        Send-TlsClient $client "1 1`n"
        $null = Wait-TlsClient $client -Pattern "45`n$"
        Stop-TlsClient $client | Should -Not -Match 'Verification error'
    }
}

Describe 'Mutual TLS, through openssl s_client' -Skip:$noOpenSsl {
    BeforeEach {
        $script:Server = Start-KeyServer -Port 0 -LogPath (New-LogPath) -CertificatePath $Certificates.ServerCombined -RequireClientCertificate -ClientCertificateAuthorityPath $Certificates.Ca
    }
    AfterEach { Get-KeyServer | Stop-KeyServer }

    It 'serves a client whose certificate the authority issued (<Flag>)' -ForEach @{ Flag = '-tls1_2' }, @{ Flag = '-tls1_3' } {
        $client = Start-TlsClient -Port $Server.Port -Arguments $Flag, '-cert', $Certificates.Client, '-key', $Certificates.ClientKey
        Send-TlsClient $client "1 7`n"
        Wait-TlsClient $client -Pattern "67`n$" | Should -BeExactly "Response for the key 7 : 67`n"
        $null = Stop-TlsClient $client
        Wait-Until { $Server.ActiveConnections -eq 0 } -Because 'the connection to close'
        $Server.Rejected | Should -Be 0
        Stop-AndReadLog $Server | Should -Be @('SYSTEM: Server launched', 'SYSTEM: Client connected!', 'Client: 1 7', 'Server: 1 Response for the key 7 : 67', 'SYSTEM: Client deconnected!', 'SYSTEM: Server stopped')
    }

    It 'refuses <Case> (<Flag>): counted in Rejected, one SYSTEM line, never a Client or Server line' -ForEach @(
        foreach ($flag in '-tls1_2', '-tls1_3') {
            @{ Case = 'a client without a certificate'; Flag = $flag; Certificate = $null }
            @{ Case = 'a certificate of another authority'; Flag = $flag; Certificate = 'Stranger' }
            @{ Case = 'a self-signed certificate'; Flag = $flag; Certificate = 'SelfSigned' }
        }
    ) {
        $arguments = @($Flag)
        if ($Certificate) { $arguments += '-cert', $Certificates.$Certificate, '-key', $Certificates."$($Certificate)Key" }
        $client = Start-TlsClient -Port $Server.Port -Arguments $arguments
        Send-TlsClient $client "1 7`n"
        $received = Wait-TlsClient $client -Exit
        $null = Stop-TlsClient $client
        $received | Should -BeNullOrEmpty
        Wait-Until { $Server.Rejected -eq 1 } -Because 'the refusal to be counted'
        $Server.Connections | Should -Be 0
        $Server.Requests | Should -Be 0
        Stop-AndReadLog $Server | Should -Be @('SYSTEM: Server launched', 'SYSTEM: Client refused (certificate)', 'SYSTEM: Server stopped')
    }

    It 'serves Invoke-KeyClient -Certificate of the authority, and refuses it without one' {
        $certificate = Get-TestCertificate $Certificates.Client $Certificates.ClientKey
        foreach ($connection in 'PerMessage', 'Persistent') {
            $replies = Invoke-KeyClient -Sequences '1 1 2 3' -Port $Server.Port -UseTls -SkipCertificateCheck -Certificate $certificate -Connection $connection
            $replies.Value | Should -Be 45, 78, 23
        }
        $Server.Rejected | Should -Be 0

        $failure = Get-CommandError { Invoke-KeyClient -Sequences '1 1' -Port $Server.Port -UseTls -SkipCertificateCheck }
        # TLS 1.3 ends the client's handshake before the server judges it: the refusal then shows as a lost connection.
        $failure.FullyQualifiedErrorId | Should -Match '^(TlsHandshakeFailed|ConnectionLost),KeyShell.Commands.InvokeKeyClientCommand$'
        Wait-Until { $Server.Rejected -eq 1 } -Because 'the refusal to be counted'
    }
}

Describe 'KeyShell clients with -UseTls' {
    BeforeAll {
        $script:Server = Start-KeyServer -Port 0 -LogPath (New-LogPath) -Certificate (New-ServerCertificate)
    }
    AfterAll { Get-KeyServer | Stop-KeyServer }

    It 'Invoke-KeyClient is served over <_> connections, and the log checks out' -ForEach 'PerMessage', 'Persistent' {
        $own = Start-KeyServer -Port 0 -LogPath (New-LogPath) -Certificate (New-ServerCertificate)
        $replies = Invoke-KeyClient -Sequences '1 1 2 3', '2 4 5 6', '3 7 8 9' -Port $own.Port -UseTls -SkipCertificateCheck -Connection $_
        ($replies | Where-Object ClientId -EQ '3').Value | Should -Be 67, 90, 10
        @($replies).Count | Should -Be 9
        $own | Stop-KeyServer
        Test-KeyConversation -Path $own.LogPath -Sequences '1 1 2 3', '2 4 5 6', '3 7 8 9' | Should -BeTrue
    }

    It 'Test-KeyServer answers $true and reads the probe''s reply' {
        Test-KeyServer -Port $Server.Port -UseTls -SkipCertificateCheck | Should -BeTrue
        (Test-KeyServer -Port $Server.Port -UseTls -SkipCertificateCheck -Detailed).Reply | Should -Be 'Response for the key 0 : 12'
    }

    It 'Measure-KeyServer loads it over <_> connections without an error' -ForEach 'Persistent', 'PerMessage' {
        $result = Measure-KeyServer -Port $Server.Port -UseTls -SkipCertificateCheck -Connection $_ -Concurrency 2 -Count 200
        $result.Requests | Should -Be 200
        $result.Errors | Should -Be 0
    }

    It 'an untrusted certificate without -SkipCertificateCheck is TlsCertificateUntrusted for <_>, not a hang' -ForEach 'Invoke-KeyClient', 'Test-KeyServer', 'Measure-KeyServer' {
        $command = $_ # (a switch leaves $_ changed)
        $parameters = switch ($command) {
            'Invoke-KeyClient' { @{ Sequences = '1 1'; Port = $Server.Port; UseTls = $true } }
            'Test-KeyServer' { @{ Port = $Server.Port; UseTls = $true } }
            'Measure-KeyServer' { @{ Port = $Server.Port; UseTls = $true; Count = 10; Concurrency = 1 } }
        }
        $failure = Get-CommandError { & $command @parameters }
        $failure.FullyQualifiedErrorId | Should -BeLike "TlsCertificateUntrusted,KeyShell.Commands.*"
        $failure.CategoryInfo.Category | Should -Be 'SecurityError'
        $failure.Exception.Message | Should -Match "The server's certificate 'CN=localhost' is not trusted"
    }

    It 'a plain client on the TLS port is told so at once, and the server keeps serving' {
        $before = $Server.Rejected
        Invoke-RawRequest -Port $Server.Port -Text "1 7`n" | Should -BeExactly "Error: TLS required`n"
        Wait-Until { $Server.Rejected -eq $before + 1 } -Because 'the refusal to be counted'
        (Invoke-KeyClient -Sequences '1 7' -Port $Server.Port -UseTls -SkipCertificateCheck).Value | Should -Be 67
    }
}

Describe 'Broken and stalled handshakes' {
    AfterEach { Get-KeyServer | Stop-KeyServer }

    It 'refuses <Case> on the TLS port: closed, counted, one SYSTEM line, and the server keeps serving' -ForEach @(
        @{ Case = 'plain text'; Bytes = [System.Text.Encoding]::ASCII.GetBytes("1 7`n"); Reply = "Error: TLS required`n" }
        @{ Case = 'a legacy request'; Bytes = [System.Text.Encoding]::ASCII.GetBytes('1 7'); Reply = "Error: TLS required`n" }
        @{ Case = 'garbage that starts like TLS'; Bytes = [byte[]](0x16, 0x03, 0x01, 0x00, 0x05, 0xff, 0xff, 0xff, 0xff, 0xff); Reply = $null }
    ) {
        $server = Start-KeyServer -Port 0 -LogPath (New-LogPath) -Certificate (New-ServerCertificate)
        $socket = Connect-Raw $server.Port
        try {
            $null = $socket.Send($Bytes)
            $received = Read-UntilClosed $socket
        }
        finally { $socket.Dispose() }
        if ($Reply) { $received | Should -BeExactly $Reply }
        Wait-Until { $server.Rejected -eq 1 } -Because 'the refusal to be counted'
        (Invoke-KeyClient -Sequences '1 7' -Port $server.Port -UseTls -SkipCertificateCheck).Value | Should -Be 67
        $server.Rejected | Should -Be 1
        $log = Stop-AndReadLog $server
        $log[0..1] | Should -Be 'SYSTEM: Server launched', 'SYSTEM: Client refused (handshake)'
        @($log | Where-Object { $_ -match '^(Client|Server): ' }).Count | Should -Be 2 -Because 'only the served request is logged'
    }

    It 'closes a handshake that stalls, after the idle timeout (<Case>)' -ForEach @(
        @{ Case = 'nothing sent'; Bytes = [byte[]]@() }
        @{ Case = 'half a ClientHello'; Bytes = [byte[]](0x16, 0x03, 0x01, 0x00, 0x40, 0x01) }
    ) {
        $server = Start-KeyServer -Port 0 -LogPath (New-LogPath) -Certificate (New-ServerCertificate) -IdleTimeoutSec 1
        $socket = Connect-Raw $server.Port
        try {
            if ($Bytes.Length) { $null = $socket.Send($Bytes) }
            $null = Read-UntilClosed $socket # bounded: 20 s, far past the 1 s timeout
        }
        finally { $socket.Dispose() }
        Wait-Until { $server.Rejected -eq 1 } -Because 'the stalled handshake to be counted'
        $server.Connections | Should -Be 0
        Stop-AndReadLog $server | Should -Be @('SYSTEM: Server launched', 'SYSTEM: Client refused (handshake)', 'SYSTEM: Server stopped')
    }

    It 'closes a TLS client on a plain port cleanly, counts it, and keeps serving' -Skip:$noOpenSsl {
        $server = Start-KeyServer -Port 0 -LogPath (New-LogPath)
        $client = Start-TlsClient -Port $server.Port
        $received = Wait-TlsClient $client -Exit # the server closed: no wait for the idle timeout
        $null = Stop-TlsClient $client
        $received | Should -BeNullOrEmpty
        Wait-Until { $server.Rejected -eq 1 } -Because 'the refusal to be counted'

        $failure = Get-CommandError { Invoke-KeyClient -Sequences '1 1' -Port $server.Port -UseTls -SkipCertificateCheck }
        $failure.FullyQualifiedErrorId | Should -Be 'TlsHandshakeFailed,KeyShell.Commands.InvokeKeyClientCommand'
        Wait-Until { $server.Rejected -eq 2 } -Because 'the second refusal to be counted'

        (Invoke-KeyClient -Sequences '1 7' -Port $server.Port).Value | Should -Be 67
        $server.Connections | Should -Be 3 -Because 'only its first bytes tell a TLS client, after it was accepted (about_KeyShell says so)'
        $log = Stop-AndReadLog $server
        @($log | Where-Object { $_ -eq 'SYSTEM: Client refused (handshake)' }).Count | Should -Be 2
        @($log | Where-Object { $_ -match '^(Client|Server): ' }) | Should -Be 'Client: 1 7', 'Server: 1 Response for the key 7 : 67' -Because 'a ClientHello is not a request'
    }
}

Describe 'Address rules at accept' {
    AfterEach { Get-KeyServer | Stop-KeyServer }

    It 'refuses a loopback client under 10.0.0.0/8 (<Transport>): closed before a byte is read, counted, one SYSTEM line' -ForEach @(
        @{ Transport = 'plain text'; Tls = $false }
        @{ Transport = 'TLS'; Tls = $true }
    ) {
        $extra = if ($Tls) { @{ Certificate = (New-ServerCertificate) } } else { @{} }
        $server = Start-KeyServer -Port 0 -LogPath (New-LogPath) -AllowedAddress 10.0.0.0/8 @extra
        $socket = Connect-Raw $server.Port
        try { Read-UntilClosed $socket | Should -BeNullOrEmpty } finally { $socket.Dispose() }
        Wait-Until { $server.Rejected -eq 1 } -Because 'the refusal to be counted'

        $failure = Get-CommandError { Invoke-KeyClient -Sequences '1 1' -Port $server.Port -UseTls:$Tls -SkipCertificateCheck:$Tls }
        $failure | Should -Not -BeNullOrEmpty
        # Invoke-KeyClient's watchdog may connect once more to see whether the server is gone: refused too.
        Wait-Until { $server.Rejected -ge 2 } -Because 'the client''s refusal to be counted'
        $server.Connections | Should -Be 0
        $server.Requests | Should -Be 0
        $log = Stop-AndReadLog $server
        $log[0] | Should -Be 'SYSTEM: Server launched'
        $log[-1] | Should -Be 'SYSTEM: Server stopped'
        $log[1..($log.Count - 2)] | Should -Be (@('SYSTEM: Client refused (address)') * $server.Rejected)
    }

    It 'serves a loopback client under 127.0.0.0/8 (<Transport>)' -ForEach @(
        @{ Transport = 'plain text'; Tls = $false }
        @{ Transport = 'TLS'; Tls = $true }
    ) {
        $extra = if ($Tls) { @{ Certificate = (New-ServerCertificate) } } else { @{} }
        $server = Start-KeyServer -Port 0 -NoLog -AllowedAddress 10.0.0.0/8, 127.0.0.0/8 @extra
        (Invoke-KeyClient -Sequences '1 1 2' -Port $server.Port -UseTls:$Tls -SkipCertificateCheck:$Tls).Value | Should -Be 45, 78
        $server.Rejected | Should -Be 0
    }

    It 'matches an IPv6 client against the IPv6 rules only' -Skip:(-not [System.Net.Sockets.Socket]::OSSupportsIPv6) {
        $v4Only = Start-KeyServer -Port 0 -NoLog -Address ::1 -AllowedAddress 127.0.0.0/8, 0.0.0.0/0
        $socket = Connect-Raw $v4Only.Port '::1'
        try { Read-UntilClosed $socket | Should -BeNullOrEmpty } finally { $socket.Dispose() }
        Wait-Until { $v4Only.Rejected -eq 1 } -Because 'an IPv6 peer matches no IPv4 rule'

        $v6 = Start-KeyServer -Port 0 -NoLog -Address ::1 -AllowedAddress ::1
        (Invoke-KeyClient -Sequences '1 1' -ComputerName ::1 -Port $v6.Port).Value | Should -Be 45
        $v6.Rejected | Should -Be 0
    }
}

Describe 'Set-KeyServer on a running TLS server' {
    AfterEach { Get-KeyServer | Stop-KeyServer }

    It 'gives new connections the new certificate while open ones keep theirs' {
        $first = New-ServerCertificate
        $second = New-ServerCertificate
        $server = Start-KeyServer -Port 0 -NoLog -Certificate $first
        $open = Connect-Tls $server.Port
        try {
            $open.Thumbprint | Should -Be $first.Thumbprint
            Send-TlsLine $open '1 1' | Should -Be 'Response for the key 1 : 45'
            $server | Set-KeyServer -Certificate $second
            $new = Connect-Tls $server.Port
            try {
                $new.Thumbprint | Should -Be $second.Thumbprint
                Send-TlsLine $new '2 2' | Should -Be 'Response for the key 2 : 78'
            }
            finally { $new.Ssl.Dispose(); $new.Tcp.Dispose() }
            Send-TlsLine $open '1 3' | Should -Be 'Response for the key 3 : 23' -Because 'the open connection goes on with its certificate'
        }
        finally { $open.Ssl.Dispose(); $open.Tcp.Dispose() }
    }
}

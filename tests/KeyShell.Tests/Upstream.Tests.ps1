# Upstream mode end to end: a KeyShell server as the "upstream" (a stand-in for any server of the protocol) and
# another KeyShell server with -Upstream in front of it, driven by Invoke-KeyClient, its log checked.

BeforeDiscovery {
    $noOpenSsl = -not (Get-Command openssl -CommandType Application -ErrorAction Ignore)
    if ($noOpenSsl) {
        Write-Host 'Upstream.Tests.ps1: openssl is not installed (.ci/run installs it): the TLS front test, which needs its certificates, is skipped.'
    }
    $modes = foreach ($framing in 'Line', 'Legacy') {
        foreach ($connection in 'Persistent', 'PerMessage') { @{ Framing = $framing; Connection = $connection } }
    }
}

BeforeAll {
    Import-Module $env:KEYSHELL_MODULE -Force
    if (-not ('KeyShellSeedStandIn' -as [type])) { Add-Type -Path (Join-Path $PSScriptRoot 'SeedStandIn.cs') }
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    $script:Directory = New-TestDirectory
    $script:SeedSequences = '1 1 2 3', '2 4 5 6', '3 7 8 9'
    $script:SeedReplies = @{ '1' = 45; '2' = 78; '3' = 23; '4' = 56; '5' = 89; '6' = 34; '7' = 67; '8' = 90; '9' = 10 }
    function New-LogPath { Join-Path $Directory ('front-' + [guid]::NewGuid().ToString('N') + '.log') }

    # Each client's replies, in its order, are the seed's for its keys.
    function Assert-SeedReplies($Replies, [string[]] $Sequences) {
        foreach ($sequence in $Sequences) {
            $client, $keys = $sequence -split ' '
            $own = @($Replies | Where-Object ClientId -EQ $client)
            $own.Reply | Should -Be @($keys | ForEach-Object { "Response for the key $_ : $($SeedReplies[$_])" })
        }
    }
}

AfterAll { Get-KeyServer | Stop-KeyServer }

Describe 'Start-KeyServer -Upstream' {
    AfterEach { Get-KeyServer | Stop-KeyServer }

    It 'passes the upstream''s replies through in each client''s order (<Framing> framing, <Connection> upstream connections), and its log checks' -ForEach $modes {
        $upstream = Start-KeyServer -Port 0 -NoLog
        $log = New-LogPath
        $front = Start-KeyServer -Port 0 -LogPath $log -Upstream "127.0.0.1:$($upstream.Port)" -UpstreamFraming $Framing -UpstreamConnection $Connection
        $replies = Invoke-KeyClient -Sequences $SeedSequences -Port $front.Port -Connection Persistent -TimeoutSec 30
        Assert-SeedReplies $replies $SeedSequences
        $front | Stop-KeyServer
        Test-KeyConversation -Path $log -Sequences $SeedSequences | Should -BeTrue
        $upstream.Requests | Should -Be 9
        $upstream.Connections | Should -Be $(if ($Connection -eq 'Persistent') { 3 } else { 9 }) -Because 'one upstream connection per client connection, or per request'
    }

    It 'in front of a stand-in for the seed''s own server (<_> upstream connections), gets the seed''s replies, and its log checks' -ForEach 'PerMessage', 'Persistent' {
        $seed = [KeyShellSeedStandIn]::new()
        try {
            $log = New-LogPath
            $front = Start-KeyServer -Port 0 -LogPath $log -Upstream "127.0.0.1:$($seed.Port)" -UpstreamFraming Legacy -UpstreamConnection $_
            $replies = Invoke-KeyClient -Sequences $SeedSequences -Port $front.Port -TimeoutSec 30
            Assert-SeedReplies $replies $SeedSequences
            $front | Stop-KeyServer
            Test-KeyConversation -Path $log -Sequences $SeedSequences | Should -BeTrue
            $seed.Received | Sort-Object | Should -Be ('1 1', '1 2', '1 3', '2 4', '2 5', '2 6', '3 7', '3 8', '3 9') -Because 'the seed''s framing: one request per read, no terminator'
            $seed.Connections | Should -Be 9 -Because 'the client connects per message, and so its front'
        }
        finally { $seed.Dispose() }
    }

    It 'serves clients in either framing and either connection mode in front of a seed-framed upstream' {
        $upstream = Start-KeyServer -Port 0 -NoLog
        $log = New-LogPath
        $front = Start-KeyServer -Port 0 -LogPath $log -Upstream "localhost:$($upstream.Port)" -UpstreamFraming Legacy -UpstreamConnection PerMessage
        Assert-SeedReplies (Invoke-KeyClient -Sequences $SeedSequences -Port $front.Port -Framing Legacy -Connection PerMessage -TimeoutSec 30) $SeedSequences
        Assert-SeedReplies (Invoke-KeyClient -Sequences '4 9 8 7' -Port $front.Port -Framing Line -Connection Persistent -TimeoutSec 30) '4 9 8 7'
        $front | Stop-KeyServer
        Test-KeyConversation -Path $log -Sequences ($SeedSequences + '4 9 8 7') | Should -BeTrue
    }

    It 'ignores -KeyMap: the upstream answers' {
        $upstream = Start-KeyServer -Port 0 -NoLog
        $front = Start-KeyServer -Port 0 -NoLog -KeyMap @{ '1' = 'the front''s own' } -Upstream "127.0.0.1:$($upstream.Port)"
        (Invoke-KeyClient -Sequences 'a 1' -Port $front.Port).Reply | Should -Be 'Response for the key 1 : 45'
    }

    It 'warns that Set-KeyServer -KeyMap on it is not used, naming the upstream' {
        $upstream = Start-KeyServer -Port 0 -NoLog
        $front = Start-KeyServer -Port 0 -NoLog -Upstream "127.0.0.1:$($upstream.Port)"
        $front | Set-KeyServer -KeyMap @{ '1' = 'the front''s own' } -WarningVariable warned -WarningAction SilentlyContinue
        "$warned" | Should -BeLike "*answers through its upstream (127.0.0.1:$($upstream.Port))*not used*"
        (Invoke-KeyClient -Sequences 'a 1' -Port $front.Port).Reply | Should -Be 'Response for the key 1 : 45'
    }

    It 'shows its upstream in Get-KeyServer' {
        $upstream = Start-KeyServer -Port 0 -NoLog
        $front = Start-KeyServer -Port 0 -NoLog -Upstream "127.0.0.1:$($upstream.Port)" -UpstreamFraming Legacy -UpstreamConnection PerMessage -HandlerTimeoutSec 7
        $shown = Get-KeyServer -Port $front.Port
        $shown.Upstream | Should -Be "127.0.0.1:$($upstream.Port)"
        $shown.UpstreamFraming | Should -Be 'Legacy'
        $shown.UpstreamConnection | Should -Be 'PerMessage'
        ($shown | Format-List | Out-String) | Should -Match ([regex]::Escape("127.0.0.1:$($upstream.Port) (Legacy framing, PerMessage connections; timeout 7 s)"))
        (Get-KeyServer -Port $upstream.Port).Upstream | Should -BeNullOrEmpty
    }

    It 'answers "Error: upstream refused the connection" when nothing listens upstream, and the client''s run goes on' {
        # Bound, never listening: the port refuses for as long as it is held (a port merely found free could be taken).
        $holder = [System.Net.Sockets.Socket]::new('InterNetwork', 'Stream', 'Tcp')
        try {
            $holder.Bind([System.Net.IPEndPoint]::new([System.Net.IPAddress]::Loopback, 0))
            $log = New-LogPath
            $front = Start-KeyServer -Port 0 -LogPath $log -Upstream "127.0.0.1:$($holder.LocalEndPoint.Port)"
            $replies = Invoke-KeyClient -Sequences '1 1 2' -Port $front.Port -ErrorVariable failures
            $replies.Reply | Should -Be 'Error: upstream refused the connection', 'Error: upstream refused the connection'
            $failures | Should -BeNullOrEmpty -Because 'an error reply is an answer: the watchdog and the errors stay the client''s'
            $front.Errors | Should -Be 2
            $front | Stop-KeyServer
            Test-KeyConversation -Path $log -Sequences '1 1 2' | Should -BeTrue
        }
        finally { $holder.Dispose() }
    }

    It 'applies its address rules in front: a peer they refuse never reaches the upstream' {
        $upstream = Start-KeyServer -Port 0 -NoLog
        $front = Start-KeyServer -Port 0 -NoLog -AllowedAddress '10.0.0.0/8' -Upstream "127.0.0.1:$($upstream.Port)"
        $failures = Get-CommandErrors { Invoke-KeyClient -Sequences '1 1' -Port $front.Port -TimeoutSec 30 }
        $failures | Should -Not -BeNullOrEmpty -Because '127.0.0.1 is not in 10.0.0.0/8'
        Wait-Until { $front.Rejected -ge 1 } -Because 'the refusal is counted'
        $upstream.Connections | Should -Be 0
    }

    It 'answers "Error: upstream timed out" past -HandlerTimeoutSec when the upstream never answers' {
        # Accepted by the kernel's listen queue and never read: requests go out, no reply ever comes.
        $silent = [System.Net.Sockets.Socket]::new('InterNetwork', 'Stream', 'Tcp')
        try {
            $silent.Bind([System.Net.IPEndPoint]::new([System.Net.IPAddress]::Loopback, 0))
            $silent.Listen(8)
            $front = Start-KeyServer -Port 0 -NoLog -Upstream "127.0.0.1:$($silent.LocalEndPoint.Port)" -HandlerTimeoutSec 1
            (Invoke-KeyClient -Sequences '1 1' -Port $front.Port -TimeoutSec 30).Reply | Should -Be 'Error: upstream timed out'
        }
        finally { $silent.Dispose() }
    }

    It 'passes a reply that is not the protocol''s through, for the client''s reply check to judge' {
        $upstream = Start-KeyServer -Port 0 -NoLog -Handler { param($Request) "not the protocol's $($Request.Key)" }
        $front = Start-KeyServer -Port 0 -NoLog -Upstream "127.0.0.1:$($upstream.Port)"
        $failure = Get-CommandErrors { Invoke-KeyClient -Sequences '1 1' -Port $front.Port }
        $failure.FullyQualifiedErrorId | Should -BeLike 'UnexpectedReply,*'
        (Invoke-KeyClient -Sequences '1 1' -Port $front.Port -SkipReplyCheck).Reply | Should -Be "not the protocol's 1"
    }

    It 'is refused with <ErrorId> for <Case>' -ForEach @(
        @{ Case = '-Upstream with -Handler'; ErrorId = 'UpstreamWithHandler'; Parameters = @{ Upstream = '127.0.0.1:8080'; Handler = { 'x' } } }
        @{ Case = 'a host without a port'; ErrorId = 'InvalidUpstream'; Parameters = @{ Upstream = '127.0.0.1' } }
        @{ Case = 'port 0'; ErrorId = 'InvalidUpstream'; Parameters = @{ Upstream = '127.0.0.1:0' } }
        @{ Case = 'port 65536'; ErrorId = 'InvalidUpstream'; Parameters = @{ Upstream = 'localhost:65536' } }
        @{ Case = 'an IPv6 address without brackets'; ErrorId = 'InvalidUpstream'; Parameters = @{ Upstream = '::1:8080' } }
        @{ Case = '-UpstreamFraming without -Upstream'; ErrorId = 'UpstreamSettingWithoutUpstream'; Parameters = @{ UpstreamFraming = 'Legacy' } }
        @{ Case = '-UpstreamConnection without -Upstream'; ErrorId = 'UpstreamSettingWithoutUpstream'; Parameters = @{ UpstreamConnection = 'PerMessage' } }
    ) {
        $before = @(Get-KeyServer).Count
        { Start-KeyServer -Port 0 -NoLog @Parameters } | Should -Throw -ErrorId "$ErrorId,KeyShell.Commands.StartKeyServerCommand"
        @(Get-KeyServer).Count | Should -Be $before -Because 'nothing is left listening'
    }

    It 'names what is wrong with an -Upstream that is not host:port' {
        $failure = try { Start-KeyServer -Port 0 -NoLog -Upstream 'seed.example' } catch { $_ }
        $failure.Exception.Message | Should -Match 'host:port'
        $failure.TargetObject | Should -Be 'seed.example'
    }
}

Describe 'TLS in front of a plain-text upstream' -Skip:$noOpenSsl {
    BeforeAll { $script:Certificates = New-TestCertificates -Directory (New-TestDirectory) }
    AfterEach { Get-KeyServer | Stop-KeyServer }

    It 'speaks TLS to its clients and plain text to the upstream, and its log checks' {
        $upstream = Start-KeyServer -Port 0 -NoLog
        $log = New-LogPath
        $front = Start-KeyServer -Port 0 -LogPath $log -CertificatePath $Certificates.ServerCombined -Upstream "127.0.0.1:$($upstream.Port)"
        $replies = Invoke-KeyClient -Sequences $SeedSequences -Port $front.Port -UseTls -SkipCertificateCheck -Connection Persistent -TimeoutSec 30
        Assert-SeedReplies $replies $SeedSequences
        $front | Stop-KeyServer
        Test-KeyConversation -Path $log -Sequences $SeedSequences | Should -BeTrue
        $upstream.UsesTls | Should -BeFalse
        $upstream.Requests | Should -Be 9
    }
}

# The parameters of exposed servers and TLS clients: what the cmdlets accept, refuse, keep and warn about.
# What the transport does with them (TLS on the wire, refusals) is in Tls.Tests.ps1.

BeforeDiscovery {
    $noOpenSsl = -not (Get-Command openssl -CommandType Application -ErrorAction Ignore)
    if ($noOpenSsl) { Write-Host 'ExposedServer.Tests.ps1: openssl is not installed (.ci/run installs it): the tests that need its certificates or s_server are skipped.' }
}

BeforeAll {
    Import-Module $env:KEYSHELL_MODULE -Force
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    $script:Directory = New-TestDirectory
    $script:Certificates = if (Get-OpenSsl) { New-TestCertificates -Directory (New-TestDirectory) }
    $script:Password = { ConvertTo-SecureString $Certificates.Password -AsPlainText -Force }

    # A certificate without its private key (as a .cer file or CreateFromPem gives one).
    function New-CertificateWithoutKey {
        $key = [System.Security.Cryptography.ECDsa]::Create()
        $request = [System.Security.Cryptography.X509Certificates.CertificateRequest]::new('CN=no key', $key, 'SHA256')
        $certificate = $request.CreateSelfSigned((Get-Date).AddDays(-1), (Get-Date).AddDays(1))
        [System.Security.Cryptography.X509Certificates.X509Certificate2]::CreateFromPem($certificate.ExportCertificatePem())
    }

    # Runs $Script, which is to fail (terminating or not); returns its first error record.
    function Get-CommandError([scriptblock] $Script) {
        $records = try { & $Script 2>&1 } catch { $_ }
        @($records) | Where-Object { $_ -is [System.Management.Automation.ErrorRecord] } | Select-Object -First 1
    }
}

AfterAll {
    Get-KeyServer | Stop-KeyServer
}

Describe 'Start-KeyServer with a certificate' -Skip:$noOpenSsl {
    AfterEach { Get-KeyServer | Stop-KeyServer }

    It 'takes a PEM file holding the certificate and its key' {
        $server = Start-KeyServer -Port 0 -NoLog -CertificatePath $Certificates.ServerCombined
        $server.UsesTls | Should -BeTrue
        $server.Certificate.Thumbprint | Should -Be (Get-CertificateThumbprint $Certificates.Server)
        $server.Certificate.HasPrivateKey | Should -BeTrue
        $server.RequireClientCertificate | Should -BeFalse
        (Get-KeyServer | Out-String) | Should -Match '\byes\b'
    }

    It 'takes the key from -KeyPath, also encrypted with -CertificatePassword' {
        (Start-KeyServer -Port 0 -NoLog -CertificatePath $Certificates.Server -KeyPath $Certificates.ServerKey).UsesTls | Should -BeTrue
        $server = Start-KeyServer -Port 0 -NoLog -CertificatePath $Certificates.Server -KeyPath $Certificates.ServerEncryptedKey -CertificatePassword (& $Password)
        $server.Certificate.Thumbprint | Should -Be (Get-CertificateThumbprint $Certificates.Server)
    }

    It 'takes a PFX file with its password' {
        $server = Start-KeyServer -Port 0 -NoLog -CertificatePath $Certificates.ServerPfx -CertificatePassword (& $Password)
        $server.Certificate.Thumbprint | Should -Be (Get-CertificateThumbprint $Certificates.Server)
    }

    It 'takes an X509Certificate2 with -Certificate' {
        $certificate = Get-TestCertificate $Certificates.Server $Certificates.ServerKey
        $server = Start-KeyServer -Port 0 -NoLog -Certificate $certificate
        $server.Certificate.Thumbprint | Should -Be $certificate.Thumbprint
    }

    It 'resolves relative paths against the PowerShell location' {
        Push-Location $Certificates.Directory
        try {
            $server = Start-KeyServer -Port 0 -NoLog -CertificatePath 'server.pem' -KeyPath 'server.key' -RequireClientCertificate -ClientCertificateAuthorityPath 'ca.pem'
            $server.UsesTls | Should -BeTrue
            $server.RequireClientCertificate | Should -BeTrue
        }
        finally { Pop-Location }
    }

    It 'goes with -Handler as with a key map' {
        $server = Start-KeyServer -Port 0 -NoLog -CertificatePath $Certificates.ServerCombined -Handler { param($Request) 'Response' }
        $server.UsesTls | Should -BeTrue
        $server.Handler | Should -Not -BeNullOrEmpty
    }

    It 'requires client certificates of an authority with -RequireClientCertificate' {
        $server = Start-KeyServer -Port 0 -NoLog -CertificatePath $Certificates.ServerCombined -RequireClientCertificate -ClientCertificateAuthorityPath $Certificates.Ca
        $server.RequireClientCertificate | Should -BeTrue
        (Get-KeyServer | Out-String) | Should -Match '\bmutual\b'
    }

    It 'fails with CertificateInvalid for <Case>, naming the file, and leaves nothing listening' -ForEach @(
        @{ Case = 'a missing file'; Arguments = { @{ CertificatePath = (Join-Path $Directory 'missing.pem') } }; Target = { Join-Path $Directory 'missing.pem' }; Message = 'does not exist' }
        @{ Case = 'random bytes'; Arguments = { [System.IO.File]::WriteAllBytes((Join-Path $Directory 'random.bin'), [byte[]](1..255)); @{ CertificatePath = (Join-Path $Directory 'random.bin') } }; Target = { Join-Path $Directory 'random.bin' }; Message = 'is not a certificate' }
        @{ Case = 'text that is no certificate'; Arguments = { Set-Content (Join-Path $Directory 'notes.txt') 'hello'; @{ CertificatePath = (Join-Path $Directory 'notes.txt') } }; Target = { Join-Path $Directory 'notes.txt' }; Message = 'is not a certificate' }
        @{ Case = 'a certificate without its key'; Arguments = { @{ CertificatePath = $Certificates.Server } }; Target = { $Certificates.Server }; Message = 'no private key' }
        @{ Case = 'the key of another certificate'; Arguments = { @{ CertificatePath = $Certificates.Server; KeyPath = $Certificates.ClientKey } }; Target = { $Certificates.ClientKey }; Message = 'does not belong to the certificate' }
        @{ Case = 'an encrypted key without its password'; Arguments = { @{ CertificatePath = $Certificates.Server; KeyPath = $Certificates.ServerEncryptedKey } }; Target = { $Certificates.ServerEncryptedKey }; Message = 'is encrypted' }
        @{ Case = 'a wrong PFX password'; Arguments = { @{ CertificatePath = $Certificates.ServerPfx; CertificatePassword = (ConvertTo-SecureString 'wrong' -AsPlainText -Force) } }; Target = { $Certificates.ServerPfx }; Message = 'the password is wrong' }
        @{ Case = 'an authority file without certificates'; Arguments = { @{ CertificatePath = $Certificates.ServerCombined; RequireClientCertificate = $true; ClientCertificateAuthorityPath = $Certificates.ServerKey } }; Target = { $Certificates.ServerKey }; Message = 'holds no certificate' }
    ) {
        $parameters = & $Arguments
        $port = Get-FreePort
        $failure = Get-CommandError { Start-KeyServer -Port $port -NoLog @parameters }
        $failure.FullyQualifiedErrorId | Should -Be 'CertificateInvalid,KeyShell.Commands.StartKeyServerCommand'
        $failure.CategoryInfo.Category | Should -Be 'InvalidData'
        $failure.TargetObject | Should -Be (& $Target)
        $failure.Exception.Message | Should -Match ([regex]::Escape($Message))
        @(Get-KeyServer).Count | Should -Be 0
        Test-KeyServer -Port $port | Should -BeFalse
    }

    It 'fails with InvalidTlsParameters when <Case>' -ForEach @(
        @{ Case = '-Certificate and -CertificatePath are both given'; Arguments = { @{ Certificate = (Get-TestCertificate $Certificates.Server $Certificates.ServerKey); CertificatePath = $Certificates.ServerCombined } }; Message = 'not both' }
        @{ Case = '-KeyPath comes without -CertificatePath'; Arguments = { @{ KeyPath = $Certificates.ServerKey } }; Message = 'go with -CertificatePath' }
        @{ Case = '-CertificatePassword comes with -Certificate'; Arguments = { @{ Certificate = (Get-TestCertificate $Certificates.Server $Certificates.ServerKey); CertificatePassword = (& $Password) } }; Message = 'go with -CertificatePath' }
        @{ Case = '-RequireClientCertificate comes without its authority'; Arguments = { @{ CertificatePath = $Certificates.ServerCombined; RequireClientCertificate = $true } }; Message = 'go together' }
        @{ Case = 'an authority comes without -RequireClientCertificate'; Arguments = { @{ CertificatePath = $Certificates.ServerCombined; ClientCertificateAuthorityPath = $Certificates.Ca } }; Message = 'go together' }
        @{ Case = 'client certificates are required without TLS'; Arguments = { @{ RequireClientCertificate = $true; ClientCertificateAuthorityPath = $Certificates.Ca } }; Message = 'needs TLS' }
    ) {
        $parameters = & $Arguments
        $failure = Get-CommandError { Start-KeyServer -Port 0 -NoLog @parameters }
        $failure.FullyQualifiedErrorId | Should -Be 'InvalidTlsParameters,KeyShell.Commands.StartKeyServerCommand'
        $failure.CategoryInfo.Category | Should -Be 'InvalidArgument'
        $failure.Exception.Message | Should -Match ([regex]::Escape($Message))
        @(Get-KeyServer).Count | Should -Be 0
    }
}

Describe 'Start-KeyServer -AllowedAddress' {
    AfterEach { Get-KeyServer | Stop-KeyServer }

    It 'keeps the rules in canonical form' {
        $server = Start-KeyServer -Port 0 -NoLog -AllowedAddress ' 10.0.0.0/8', 'FD00::/8', '127.0.0.1', '::ffff:192.168.0.0/112'
        $server.AllowedAddress | Should -Be '10.0.0.0/8', 'fd00::/8', '127.0.0.1/32', '192.168.0.0/16'
        $server.UsesTls | Should -BeFalse
    }

    It 'fails on <Rule> with InvalidAddressRule, the rule as its target' -ForEach @(
        @{ Rule = '10.1.2.3/8'; Why = 'the network is 10.0.0.0/8' }
        @{ Rule = '10.0.0.0/33'; Why = 'an IPv4 prefix is 0 to 32' }
        @{ Rule = 'fd00::/129'; Why = 'an IPv6 prefix is 0 to 128' }
        @{ Rule = 'intranet'; Why = 'is not an IPv4 address' }
        @{ Rule = '010.0.0.1'; Why = 'leading zero' }
        @{ Rule = 'fe80::1%eth0'; Why = 'zone index' }
    ) {
        $port = Get-FreePort
        $failure = Get-CommandError { Start-KeyServer -Port $port -NoLog -AllowedAddress '127.0.0.1', $Rule }
        $failure.FullyQualifiedErrorId | Should -Be 'InvalidAddressRule,KeyShell.Commands.StartKeyServerCommand'
        $failure.CategoryInfo.Category | Should -Be 'InvalidArgument'
        $failure.TargetObject | Should -Be $Rule
        $failure.Exception.Message | Should -Match ([regex]::Escape($Why))
        @(Get-KeyServer).Count | Should -Be 0
        Test-KeyServer -Port $port | Should -BeFalse
    }
}

Describe 'The warning for a server beyond loopback' {
    AfterEach { Get-KeyServer | Stop-KeyServer }

    It 'warns on <_> without TLS and without -AllowedAddress' -ForEach '0.0.0.0', '*', '::' {
        if ($_ -eq '::' -and -not [System.Net.Sockets.Socket]::OSSupportsIPv6) { Set-ItResult -Skipped -Because 'this machine has no IPv6' }
        $null = Start-KeyServer -Port 0 -NoLog -Address $_ -WarningVariable warnings -WarningAction SilentlyContinue
        @($warnings).Count | Should -Be 1
        "$($warnings[0])" | Should -Match 'in plain text and serves anyone who can reach it'
        "$($warnings[0])" | Should -Match '-AllowedAddress'
    }

    It 'does not warn when -AllowedAddress limits who is served' {
        $null = Start-KeyServer -Port 0 -NoLog -Address 0.0.0.0 -AllowedAddress 10.0.0.0/8 -WarningVariable warnings -WarningAction SilentlyContinue
        $warnings | Should -BeNullOrEmpty
    }

    It 'does not warn when the server speaks TLS' -Skip:$noOpenSsl {
        $null = Start-KeyServer -Port 0 -NoLog -Address 0.0.0.0 -CertificatePath $Certificates.ServerCombined -WarningVariable warnings -WarningAction SilentlyContinue
        $warnings | Should -BeNullOrEmpty
    }

    It 'does not warn on the loopback address <_>' -ForEach '127.0.0.1', '127.0.0.2', 'localhost', '::1' {
        if ($_ -eq '::1' -and -not [System.Net.Sockets.Socket]::OSSupportsIPv6) { Set-ItResult -Skipped -Because 'this machine has no IPv6' }
        $null = Start-KeyServer -Port 0 -NoLog -Address $_ -WarningVariable warnings -WarningAction SilentlyContinue
        $warnings | Should -BeNullOrEmpty
    }
}

Describe 'Set-KeyServer with a certificate' -Skip:$noOpenSsl {
    AfterEach { Get-KeyServer | Stop-KeyServer }

    It 'gives a TLS server a new certificate' {
        $server = Start-KeyServer -Port 0 -NoLog -CertificatePath $Certificates.ServerCombined
        $result = $server | Set-KeyServer -CertificatePath $Certificates.Renewed -KeyPath $Certificates.RenewedKey -PassThru
        $result.Port | Should -Be $server.Port
        $server.Certificate.Thumbprint | Should -Be (Get-CertificateThumbprint $Certificates.Renewed)
        Set-KeyServer -Port $server.Port -Certificate (Get-TestCertificate $Certificates.Server $Certificates.ServerKey)
        $server.Certificate.Thumbprint | Should -Be (Get-CertificateThumbprint $Certificates.Server)
    }

    It 'refuses a plain server with TlsNotEnabled, and still changes the others' {
        $tls = Start-KeyServer -Port 0 -NoLog -CertificatePath $Certificates.ServerCombined
        $plain = Start-KeyServer -Port 0 -NoLog
        $plain, $tls | Set-KeyServer -CertificatePath $Certificates.Renewed -KeyPath $Certificates.RenewedKey -KeyMap @{ a = 1 } -ErrorVariable failures -ErrorAction SilentlyContinue
        @($failures).Count | Should -Be 1
        $failures[0].FullyQualifiedErrorId | Should -Be 'TlsNotEnabled,KeyShell.Commands.SetKeyServerCommand'
        $failures[0].TargetObject | Should -Be $plain
        $plain.UsesTls | Should -BeFalse
        $plain.KeyMap.Count | Should -Be 10 -Because 'a refused server is left as it was'
        $tls.Certificate.Thumbprint | Should -Be (Get-CertificateThumbprint $Certificates.Renewed)
        $tls.KeyMap.Count | Should -Be 1
    }

    It 'changes nothing under -WhatIf' {
        $server = Start-KeyServer -Port 0 -NoLog -CertificatePath $Certificates.ServerCombined
        $server | Set-KeyServer -CertificatePath $Certificates.Renewed -KeyPath $Certificates.RenewedKey -WhatIf
        $server.Certificate.Thumbprint | Should -Be (Get-CertificateThumbprint $Certificates.Server)
    }

    It 'reads the certificate before touching any server, and fails whole on a bad one' {
        $server = Start-KeyServer -Port 0 -NoLog -CertificatePath $Certificates.ServerCombined
        $failure = Get-CommandError { $server | Set-KeyServer -CertificatePath $Certificates.Renewed -KeyPath $Certificates.ClientKey -KeyMap @{ a = 1 } }
        $failure.FullyQualifiedErrorId | Should -Be 'CertificateInvalid,KeyShell.Commands.SetKeyServerCommand'
        $server.Certificate.Thumbprint | Should -Be (Get-CertificateThumbprint $Certificates.Server)
        $server.KeyMap.Count | Should -Be 10
    }

    It 'fails with InvalidTlsParameters for -Certificate with -CertificatePath' {
        $server = Start-KeyServer -Port 0 -NoLog -CertificatePath $Certificates.ServerCombined
        $failure = Get-CommandError { $server | Set-KeyServer -CertificatePath $Certificates.Renewed -Certificate (Get-TestCertificate $Certificates.Server $Certificates.ServerKey) }
        $failure.FullyQualifiedErrorId | Should -Be 'InvalidTlsParameters,KeyShell.Commands.SetKeyServerCommand'
    }
}

Describe 'Set-KeyServer with nothing to set' {
    AfterEach { Get-KeyServer | Stop-KeyServer }

    It 'fails with NothingToSet' {
        $server = Start-KeyServer -Port 0 -NoLog
        $failure = Get-CommandError { $server | Set-KeyServer }
        $failure.FullyQualifiedErrorId | Should -Be 'NothingToSet,KeyShell.Commands.SetKeyServerCommand'
    }
}

Describe 'The TLS parameters of <_>' -ForEach 'Invoke-KeyClient', 'Test-KeyServer', 'Measure-KeyServer' {
    BeforeAll {
        $script:CmdletName = $_
        $script:Base = switch ($_) {
            'Invoke-KeyClient' { @{ Sequences = '1 1'; Port = 1 } }
            'Test-KeyServer' { @{ Port = 1 } }
            'Measure-KeyServer' { @{ Port = 1; Count = 1 } }
        }
    }

    It 'refuses -SkipCertificateCheck and -Certificate without -UseTls' {
        foreach ($extra in @{ SkipCertificateCheck = $true }, @{ Certificate = (New-CertificateWithoutKey) }) {
            $failure = Get-CommandError { & $CmdletName @Base @extra }
            $failure.FullyQualifiedErrorId | Should -Match '^InvalidTlsParameters,'
            $failure.Exception.Message | Should -Match 'go with -UseTls'
        }
    }

    It 'refuses a client certificate without its private key' {
        $withoutKey = New-CertificateWithoutKey
        $failure = Get-CommandError { & $CmdletName @Base -UseTls -Certificate $withoutKey }
        $failure.FullyQualifiedErrorId | Should -Match '^CertificateInvalid,'
        $failure.Exception.Message | Should -Match 'has no private key'
    }
}

Describe 'Test-KeyServer -UseTls against openssl s_server' -Skip:$noOpenSsl {
    BeforeAll {
        $script:OpenSsl = Start-OpenSslServer -Certificate $Certificates.Server -Key $Certificates.ServerKey
        $script:Mutual = Start-OpenSslServer -Certificate $Certificates.Server -Key $Certificates.ServerKey -Arguments '-Verify', '1', '-CAfile', $Certificates.Ca, '-verify_return_error'
    }
    AfterAll {
        Stop-OpenSslServer $OpenSsl
        Stop-OpenSslServer $Mutual
    }

    It 'answers $true with -SkipCertificateCheck, and reads the reply with -Detailed' {
        # s_server -rev is not a key server: its reply ('0 eborp') is taken with -SkipReplyCheck only.
        Test-KeyServer -Port $OpenSsl.Port -UseTls -SkipCertificateCheck | Should -BeFalse
        Test-KeyServer -Port $OpenSsl.Port -UseTls -SkipCertificateCheck -SkipReplyCheck | Should -BeTrue
        $result = Test-KeyServer -Port $OpenSsl.Port -UseTls -SkipCertificateCheck -SkipReplyCheck -Detailed
        $result.Reachable | Should -BeTrue
        $result.Reply | Should -Be '0 eborp' # s_server -rev answers each line reversed
    }

    It 'reports an untrusted certificate as TlsCertificateUntrusted, and $false' {
        $output = Test-KeyServer -Port $OpenSsl.Port -UseTls -ErrorVariable failures -ErrorAction SilentlyContinue
        $output | Should -BeFalse
        @($failures).Count | Should -Be 1
        $failures[0].FullyQualifiedErrorId | Should -Be 'TlsCertificateUntrusted,KeyShell.Commands.TestKeyServerCommand'
        $failures[0].CategoryInfo.Category | Should -Be 'SecurityError'
        $failures[0].TargetObject | Should -Be "127.0.0.1:$($OpenSsl.Port)"
        $failures[0].Exception.Message | Should -Match "The server's certificate 'CN=localhost' is not trusted"
    }

    It 'presents its -Certificate to a server that requires one' {
        $client = Get-TestCertificate $Certificates.Client $Certificates.ClientKey
        $result = Test-KeyServer -Port $Mutual.Port -UseTls -SkipCertificateCheck -Certificate $client -SkipReplyCheck -Detailed
        $result.Reachable | Should -BeTrue
        $result.Reply | Should -Be '0 eborp'

        $refused = Test-KeyServer -Port $Mutual.Port -UseTls -SkipCertificateCheck -Detailed
        $refused.Reply | Should -BeNullOrEmpty
        $refused.Error | Should -Not -BeNullOrEmpty
    }
}

# Helpers shared by the Pester suites: free ports, child pwsh processes, raw TCP clients, bounded waits.

# Generous: a child pwsh that starts and imports the module took over 20 s on a loaded 2-core machine.
$script:Bound = [TimeSpan]::FromSeconds(60)

function Get-FreePort {
    $listener = [System.Net.Sockets.TcpListener]::new([System.Net.IPAddress]::Loopback, 0)
    $listener.Start()
    try { $listener.LocalEndpoint.Port } finally { $listener.Stop() }
}

# A port free on every address and below the ephemeral range (32768 and up on Linux, 49152 on Windows): no
# outgoing connection takes it as its own, nor holds it in TIME_WAIT after a load, so it can be bound much later,
# as the help examples bind 8080's stand-in, on 0.0.0.0 too, after many connections of their own.
function Get-FreeFixedPort {
    foreach ($attempt in 1..500) {
        $port = Get-Random -Minimum 20000 -Maximum 32768
        $listener = [System.Net.Sockets.TcpListener]::new([System.Net.IPAddress]::Any, $port)
        try { $listener.Start(); return $port }
        catch [System.Net.Sockets.SocketException] { }
        finally { $listener.Stop() }
    }
    throw 'No free port between 20000 and 32767.'
}

function Get-PwshPath {
    Join-Path $PSHOME ($(if ($IsWindows) { 'pwsh.exe' } else { 'pwsh' }))
}

function New-TestDirectory {
    $path = Join-Path ([System.IO.Path]::GetTempPath()) ('keyshell-pester-' + [guid]::NewGuid().ToString('N'))
    (New-Item -ItemType Directory -Path $path).FullName
}

# Starts a pwsh child running $Command with the module imported; stdout and stderr go to files.
function Start-ChildPwsh {
    param([Parameter(Mandatory)] [string] $Command, [Parameter(Mandatory)] [string] $Directory)
    $script = "Import-Module '$env:KEYSHELL_MODULE'; $Command"
    $info = [System.Diagnostics.ProcessStartInfo]::new((Get-PwshPath))
    foreach ($argument in '-NoProfile', '-NonInteractive', '-Command', $script) { $info.ArgumentList.Add($argument) }
    $info.WorkingDirectory = $Directory
    $info.RedirectStandardInput = $true
    $info.RedirectStandardOutput = $true
    $info.RedirectStandardError = $true
    $info.UseShellExecute = $false
    $process = [System.Diagnostics.Process]::Start($info)
    [pscustomobject]@{
        Process = $process
        Output  = [System.Collections.Generic.List[string]]::new()
        Reads   = @($process.StandardOutput.ReadLineAsync(), $process.StandardError.ReadLineAsync())
    }
}

# Collects the lines a child has printed so far (stdout and stderr), without blocking.
function Update-ChildOutput {
    param([Parameter(Mandatory)] $Child)
    $readers = $Child.Process.StandardOutput, $Child.Process.StandardError
    for ($i = 0; $i -lt 2; $i++) {
        while ($null -ne $Child.Reads[$i] -and $Child.Reads[$i].IsCompleted) {
            $line = $Child.Reads[$i].Result
            if ($null -eq $line) { $Child.Reads[$i] = $null; break }
            $Child.Output.Add($(if ($i -eq 1) { "ERR: $line" } else { $line }))
            $Child.Reads[$i] = $readers[$i].ReadLineAsync()
        }
    }
    $Child.Output
}

# Waits (bounded) until a child prints a line matching $Pattern; returns the match.
function Wait-ChildOutput {
    param([Parameter(Mandatory)] $Child, [Parameter(Mandatory)] [string] $Pattern)
    $deadline = [DateTime]::UtcNow + $script:Bound
    while ([DateTime]::UtcNow -lt $deadline) {
        foreach ($line in @(Update-ChildOutput $Child)) {
            if ($line -match $Pattern) { return $Matches }
        }
        if ($Child.Process.HasExited -and $null -eq $Child.Reads[0]) { break }
        Start-Sleep -Milliseconds 50
    }
    throw "Timed out waiting for '$Pattern'. Output so far:`n$($Child.Output -join "`n")"
}

# Runs pwsh with $Arguments to its end (bounded: -TimeoutSec, or three times the usual bound) and returns its
# exit code and output lines (stdout, then stderr). $Environment changes the child's environment: a $null
# value removes the variable.
function Invoke-ChildPwsh {
    param([Parameter(Mandatory)] [string[]] $Arguments, [hashtable] $Environment = @{}, [int] $TimeoutSec = 3 * $script:Bound.TotalSeconds)
    $info = [System.Diagnostics.ProcessStartInfo]::new((Get-PwshPath))
    foreach ($argument in $Arguments) { $info.ArgumentList.Add($argument) }
    foreach ($name in $Environment.Keys) {
        if ($null -eq $Environment[$name]) { $null = $info.Environment.Remove($name) } else { $info.Environment[$name] = $Environment[$name] }
    }
    $info.RedirectStandardOutput = $true
    $info.RedirectStandardError = $true
    $info.UseShellExecute = $false
    $process = [System.Diagnostics.Process]::Start($info)
    try {
        $stdout = $process.StandardOutput.ReadToEndAsync()
        $stderr = $process.StandardError.ReadToEndAsync()
        # By default three times the usual bound: a pwsh that starts, imports the module and serves, on a busy machine.
        if (-not $process.WaitForExit($TimeoutSec * 1000)) {
            $process.Kill($true)
            throw "pwsh $Arguments did not end within $TimeoutSec s."
        }
        $process.WaitForExit() # the output is read to its end too
        [pscustomobject]@{
            ExitCode = $process.ExitCode
            Output   = @(@($stdout.Result -split '\r?\n') + @($stderr.Result -split '\r?\n') | Where-Object { $_ })
        }
    }
    finally { $process.Dispose() }
}

function Stop-ChildPwsh {
    param([Parameter(Mandatory)] $Child)
    if (-not $Child.Process.HasExited) { $Child.Process.Kill($true) }
    $null = $Child.Process.WaitForExit(10000)
}

# Waits (bounded) for a condition.
function Wait-Until {
    param([Parameter(Mandatory)] [scriptblock] $Condition, [string] $Because = 'the condition')
    $deadline = [DateTime]::UtcNow + $script:Bound
    while (-not (& $Condition)) {
        if ([DateTime]::UtcNow -gt $deadline) { throw "Timed out waiting for $Because." }
        Start-Sleep -Milliseconds 50
    }
}

# Every error record a command wrote or threw, in order (so a stray one before the real error shows).
function Get-CommandErrors {
    param([Parameter(Mandatory)] [scriptblock] $Script)
    $records = try { & $Script 2>&1 } catch { $_ }
    @($records | Where-Object { $_ -is [System.Management.Automation.ErrorRecord] })
}

# Sends raw text over a TcpClient and returns what comes back: $Lines LF-terminated lines, or one read.
function Invoke-RawRequest {
    param([Parameter(Mandatory)] [int] $Port, [Parameter(Mandatory)] [string] $Text, [int] $Lines = 0)
    $client = [System.Net.Sockets.TcpClient]::new()
    try {
        $client.Connect([System.Net.IPAddress]::Loopback, $Port)
        $client.ReceiveTimeout = 10000
        $stream = $client.GetStream()
        $bytes = [System.Text.Encoding]::ASCII.GetBytes($Text)
        $stream.Write($bytes, 0, $bytes.Length)
        $buffer = [byte[]]::new(65536)
        $received = ''
        do {
            $count = $stream.Read($buffer, 0, $buffer.Length)
            if ($count -le 0) { break }
            $received += [System.Text.Encoding]::ASCII.GetString($buffer, 0, $count)
        } while ($Lines -gt 0 -and ($received.ToCharArray() | Where-Object { $_ -eq "`n" }).Count -lt $Lines)
        $received
    }
    finally { $client.Dispose() }
}


# True when something accepts TCP connections on the loopback port.
function Test-NetConnectionQuick {
    param([Parameter(Mandatory)] [int] $Port)
    $client = [System.Net.Sockets.TcpClient]::new()
    try { $client.Connect([System.Net.IPAddress]::Loopback, $Port); $true } catch { $false } finally { $client.Dispose() }
}

# A throwaway sshd on a loopback port the OS gave, with its own host key, config and client key in a temp
# folder, and this pwsh as its 'powershell' subsystem: PowerShell remoting over SSH to 127.0.0.1.
# Returns the sshd's process, port, user and client key; or, where sshd is missing or will not start,
# an object whose Reason says why (the only case in which remoting tests may be skipped).
function Start-TestSshd {
    param([string] $ModulePath)
    $sshd = '/usr/sbin/sshd'
    if (-not (Test-Path $sshd)) { return [pscustomobject]@{ Reason = "$sshd is not installed (the Debian package openssh-server; .ci/run installs it)" } }
    $keygen = Get-Command ssh-keygen -CommandType Application -ErrorAction Ignore | Select-Object -First 1
    if (-not $keygen) { return [pscustomobject]@{ Reason = 'ssh-keygen is not installed' } }
    $directory = New-TestDirectory
    $hostKey = Join-Path $directory 'host_ed25519'
    $clientKey = Join-Path $directory 'client_ed25519'
    foreach ($key in $hostKey, $clientKey) {
        $null = & $keygen.Source -q -t ed25519 -N '' -f $key
        if ($LASTEXITCODE -ne 0) { return [pscustomobject]@{ Reason = "ssh-keygen failed ($LASTEXITCODE)" } }
    }
    $user = [Environment]::UserName
    # Running as root, sshd wants its privilege separation folder.
    if ($user -eq 'root' -and -not (Test-Path /run/sshd)) { $null = New-Item -ItemType Directory /run/sshd }
    $lastError = ''
    foreach ($attempt in 1..3) {
        # A port the OS gave: free a moment ago; if something took it meanwhile, sshd fails and the next try takes another.
        $port = Get-FreePort
        $config = Join-Path $directory 'sshd_config'
        $lines = @(
            "Port $port"
            'ListenAddress 127.0.0.1'
            "HostKey $hostKey"
            'PidFile none'
            'UsePAM no'
            "AuthorizedKeysFile $clientKey.pub"
            'PubkeyAuthentication yes'
            'PasswordAuthentication no'
            'KbdInteractiveAuthentication no'
            "PermitRootLogin $(if ($user -eq 'root') { 'prohibit-password' } else { 'no' })"
            'StrictModes no'
            "Subsystem powershell $(Get-PwshPath) -sshs -NoLogo -NoProfile"
        )
        # Remote sessions find the module under test by name, as they would an installed one.
        if ($ModulePath) { $lines += "SetEnv PSModulePath=$(Split-Path (Split-Path $ModulePath))" }
        Set-Content -Path $config -Value $lines
        $info = [System.Diagnostics.ProcessStartInfo]::new($sshd)
        foreach ($argument in '-f', $config, '-D', '-e') { $info.ArgumentList.Add($argument) }
        $info.RedirectStandardError = $true
        $info.UseShellExecute = $false
        $process = [System.Diagnostics.Process]::Start($info)
        $errors = $process.StandardError.ReadToEndAsync()
        $deadline = [DateTime]::UtcNow + $script:Bound
        while (-not $process.HasExited -and -not (Test-NetConnectionQuick -Port $port) -and [DateTime]::UtcNow -lt $deadline) { Start-Sleep -Milliseconds 50 }
        if (-not $process.HasExited -and (Test-NetConnectionQuick -Port $port)) {
            return [pscustomobject]@{ Process = $process; Port = $port; UserName = $user; KeyFilePath = $clientKey; Directory = $directory; Reason = $null }
        }
        if (-not $process.HasExited) { $process.Kill() }
        $null = $process.WaitForExit(5000)
        $lastError = if ($errors.Wait(2000)) { $errors.Result.Trim() } else { '' }
    }
    [pscustomobject]@{ Reason = "sshd did not start: $lastError" }
}

function Stop-TestSshd {
    param($Sshd)
    if ($Sshd -and $Sshd.Process -and -not $Sshd.Process.HasExited) {
        $Sshd.Process.Kill()
        $null = $Sshd.Process.WaitForExit(10000)
    }
}

# The parameters New-PSSession and Invoke-Command need for the throwaway sshd (host keys are throwaway too: not checked).
function Get-TestSshParameters {
    param([Parameter(Mandatory)] $Sshd)
    @{ Port = $Sshd.Port; UserName = $Sshd.UserName; KeyFilePath = $Sshd.KeyFilePath; Options = @{ StrictHostKeyChecking = 'no'; UserKnownHostsFile = '/dev/null'; LogLevel = 'ERROR' } }
}

# --- TLS: certificates made by openssl, and openssl s_client as a TLS client no one here wrote ---

# The openssl program, or $null (.ci/run installs it; tests that need it skip, saying why, where it is missing).
function Get-OpenSsl {
    (Get-Command openssl -CommandType Application -ErrorAction Ignore | Select-Object -First 1).Source
}

function Invoke-OpenSsl {
    param([Parameter(Mandatory)] [string[]] $Arguments)
    $output = & (Get-OpenSsl) @Arguments 2>&1
    if ($LASTEXITCODE -ne 0) { throw "openssl $($Arguments -join ' ') failed ($LASTEXITCODE): $($output -join "`n")" }
}

<#
    Makes the TLS tests' certificates with openssl (EC P-256), in $Directory:
      ca.pem/.key, other-ca.pem/.key          two authorities
      server.pem/.key                         CN=localhost, SANs localhost, 127.0.0.1, ::1, serverAuth, signed by ca
      server-combined.pem                     the server certificate and its key in one file
      server-encrypted.key                    its key as encrypted PKCS#8 (password $Password)
      server.pfx                              certificate and key as PKCS#12 (password $Password)
      renewed.pem/.key                        a second server certificate, for Set-KeyServer
      client.pem/.key                         clientAuth, signed by ca
      stranger.pem/.key                       clientAuth, signed by other-ca
      self-signed.pem/.key                    clientAuth, self-signed
    Returns an object with those paths (Ca, OtherCa, Server, ServerKey, ...) and the password.
#>
function New-TestCertificates {
    param([Parameter(Mandatory)] [string] $Directory, [string] $Password = 'test password')
    $ec = @('-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes')
    $path = { param($name) Join-Path $Directory $name }
    $authority = {
        param($name, $subject)
        Invoke-OpenSsl (@('req', '-x509') + $ec + @('-keyout', (& $path "$name.key"), '-out', (& $path "$name.pem"), '-days', '30',
                '-subj', $subject, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'))
    }
    $leaf = {
        param($name, $subject, $issuer, $extensions)
        Set-Content -Path (& $path "$name.ext") -Value (@('basicConstraints=CA:FALSE', 'keyUsage=critical,digitalSignature') + $extensions)
        Invoke-OpenSsl (@('req') + $ec + @('-keyout', (& $path "$name.key"), '-out', (& $path "$name.csr"), '-subj', $subject))
        Invoke-OpenSsl @('x509', '-req', '-in', (& $path "$name.csr"), '-CA', (& $path "$issuer.pem"), '-CAkey', (& $path "$issuer.key"),
            '-set_serial', [string](Get-Random -Minimum 1000 -Maximum 2000000000), '-days', '30', '-out', (& $path "$name.pem"), '-extfile', (& $path "$name.ext"))
    }
    $serverNames = @('extendedKeyUsage=serverAuth', 'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1')
    & $authority 'ca' '/CN=KeyShell Pester CA'
    & $authority 'other-ca' '/CN=KeyShell Pester Other CA'
    & $leaf 'server' '/CN=localhost' 'ca' $serverNames
    & $leaf 'renewed' '/CN=localhost' 'ca' $serverNames
    & $leaf 'client' '/CN=pester client' 'ca' @('extendedKeyUsage=clientAuth')
    & $leaf 'stranger' '/CN=pester stranger' 'other-ca' @('extendedKeyUsage=clientAuth')
    Invoke-OpenSsl (@('req', '-x509') + $ec + @('-keyout', (& $path 'self-signed.key'), '-out', (& $path 'self-signed.pem'), '-days', '30',
            '-subj', '/CN=pester self-signed', '-addext', 'extendedKeyUsage=clientAuth'))
    Set-Content -Path (& $path 'server-combined.pem') -Value ((Get-Content -Raw (& $path 'server.pem')) + (Get-Content -Raw (& $path 'server.key')))
    Invoke-OpenSsl @('pkcs8', '-topk8', '-in', (& $path 'server.key'), '-out', (& $path 'server-encrypted.key'), '-passout', "pass:$Password")
    Invoke-OpenSsl @('pkcs12', '-export', '-in', (& $path 'server.pem'), '-inkey', (& $path 'server.key'), '-out', (& $path 'server.pfx'), '-passout', "pass:$Password")
    [pscustomobject]@{
        Directory = $Directory; Password = $Password
        Ca = & $path 'ca.pem'; OtherCa = & $path 'other-ca.pem'
        Server = & $path 'server.pem'; ServerKey = & $path 'server.key'; ServerCombined = & $path 'server-combined.pem'
        ServerEncryptedKey = & $path 'server-encrypted.key'; ServerPfx = & $path 'server.pfx'
        Renewed = & $path 'renewed.pem'; RenewedKey = & $path 'renewed.key'
        Client = & $path 'client.pem'; ClientKey = & $path 'client.key'
        Stranger = & $path 'stranger.pem'; StrangerKey = & $path 'stranger.key'
        SelfSigned = & $path 'self-signed.pem'; SelfSignedKey = & $path 'self-signed.key'
    }
}

# The SHA-1 thumbprint of a PEM certificate file, as X509Certificate2.Thumbprint shows it.
function Get-CertificateThumbprint {
    param([Parameter(Mandatory)] [string] $Path)
    [System.Security.Cryptography.X509Certificates.X509Certificate2]::CreateFromPem((Get-Content -Raw $Path)).Thumbprint
}

# A certificate with its key, as -Certificate takes it, from PEM files.
function Get-TestCertificate {
    param([Parameter(Mandatory)] [string] $Path, [Parameter(Mandatory)] [string] $KeyPath)
    [System.Security.Cryptography.X509Certificates.X509Certificate2]::CreateFromPemFile($Path, $KeyPath)
}

<#
    Starts openssl s_client against 127.0.0.1:$Port with -brief (its standard error then tells the protocol
    and the certificate check) and any $Arguments (-tls1_2, -cert/-key, ...). What the server sends is
    collected as it comes (Update-TlsClient); Send-TlsClient writes to it exactly the bytes given.
#>
function Start-TlsClient {
    param([Parameter(Mandatory)] [int] $Port, [string[]] $Arguments = @())
    $info = [System.Diagnostics.ProcessStartInfo]::new((Get-OpenSsl))
    foreach ($argument in @('s_client', '-connect', "127.0.0.1:$Port", '-brief') + $Arguments) { $info.ArgumentList.Add($argument) }
    $info.RedirectStandardInput = $true
    $info.RedirectStandardOutput = $true
    $info.RedirectStandardError = $true
    $info.UseShellExecute = $false
    $process = [System.Diagnostics.Process]::Start($info)
    $client = [pscustomobject]@{
        Process  = $process
        Received = [System.Text.StringBuilder]::new()
        Buffer   = [byte[]]::new(4096)
        Read     = $null
        Errors   = $process.StandardError.ReadToEndAsync()
    }
    $client.Read = $process.StandardOutput.BaseStream.ReadAsync($client.Buffer, 0, $client.Buffer.Length)
    $client
}

# What the server has sent so far; $Client.Read is $null once the connection has ended.
function Update-TlsClient {
    param([Parameter(Mandatory)] $Client)
    while ($null -ne $Client.Read -and $Client.Read.IsCompleted) {
        $count = if ($Client.Read.IsFaulted) { 0 } else { $Client.Read.Result }
        if ($count -le 0) { $Client.Read = $null; break }
        $null = $Client.Received.Append([System.Text.Encoding]::ASCII.GetString($Client.Buffer, 0, $count))
        $Client.Read = $Client.Process.StandardOutput.BaseStream.ReadAsync($Client.Buffer, 0, $Client.Buffer.Length)
    }
    $Client.Received.ToString()
}

function Send-TlsClient {
    param([Parameter(Mandatory)] $Client, [Parameter(Mandatory)] [string] $Text)
    $Client.Process.StandardInput.Write($Text)
    $Client.Process.StandardInput.Flush()
}

# Waits (bounded) until what the server sent matches $Pattern, or with -Exit until s_client has ended; returns what was received.
function Wait-TlsClient {
    param([Parameter(Mandatory)] $Client, [string] $Pattern, [switch] $Exit)
    $deadline = [DateTime]::UtcNow + $script:Bound
    while ([DateTime]::UtcNow -lt $deadline) {
        $received = Update-TlsClient $Client
        if ($Pattern -and $received -match $Pattern) { return $received }
        if ($Exit -and $Client.Process.HasExited -and $null -eq $Client.Read) { return $received }
        Start-Sleep -Milliseconds 20
    }
    $what = if ($Exit) { 'openssl s_client to end' } else { "'$Pattern'" }
    throw "Timed out waiting for $what. Received: '$(Update-TlsClient $Client)'"
}

# Ends s_client; returns its standard error (-brief: 'Protocol version: TLSv1.3', verification, alerts).
function Stop-TlsClient {
    param([Parameter(Mandatory)] $Client)
    if (-not $Client.Process.HasExited) { $Client.Process.Kill($true) }
    $null = $Client.Process.WaitForExit(10000)
    if ($Client.Errors.Wait(10000)) { $Client.Errors.Result } else { '' }
}

<#
    Starts openssl s_server on 127.0.0.1, a port it picks, with -rev (it answers each line reversed:
    'probe 0' gets '0 eborp') and any $Arguments (-Verify 1 -CAfile ... for client certificates). A TLS server
    no one here wrote, for the client side. Returns @{ Process; Port }.
#>
function Start-OpenSslServer {
    param([Parameter(Mandatory)] [string] $Certificate, [Parameter(Mandatory)] [string] $Key, [string[]] $Arguments = @())
    $info = [System.Diagnostics.ProcessStartInfo]::new((Get-OpenSsl))
    foreach ($argument in @('s_server', '-accept', '127.0.0.1:0', '-cert', $Certificate, '-key', $Key, '-rev') + $Arguments) { $info.ArgumentList.Add($argument) }
    $info.RedirectStandardInput = $true
    $info.RedirectStandardOutput = $true
    $info.RedirectStandardError = $true
    $info.UseShellExecute = $false
    $process = [System.Diagnostics.Process]::Start($info)
    $null = $process.StandardError.ReadToEndAsync() # never let a full pipe stall it
    $deadline = [DateTime]::UtcNow + $script:Bound
    while ([DateTime]::UtcNow -lt $deadline) {
        $line = $process.StandardOutput.ReadLineAsync()
        if (-not $line.Wait($script:Bound)) { break }
        if ($null -eq $line.Result) { break }
        if ($line.Result -match '^ACCEPT .*:(\d+)$') {
            $server = [pscustomobject]@{ Process = $process; Port = [int]$Matches[1] }
            $null = $process.StandardOutput.ReadToEndAsync()
            return $server
        }
    }
    if (-not $process.HasExited) { $process.Kill($true) }
    throw 'openssl s_server did not start.'
}

function Stop-OpenSslServer {
    param([Parameter(Mandatory)] $Server)
    if (-not $Server.Process.HasExited) { $Server.Process.Kill($true) }
    $null = $Server.Process.WaitForExit(10000)
}

Export-ModuleMember -Function *

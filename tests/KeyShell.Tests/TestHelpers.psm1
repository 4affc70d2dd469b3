# Helpers shared by the Pester suites: free ports, child pwsh processes, raw TCP clients, bounded waits.

$script:Bound = [TimeSpan]::FromSeconds(20)

function Get-FreePort {
    $listener = [System.Net.Sockets.TcpListener]::new([System.Net.IPAddress]::Loopback, 0)
    $listener.Start()
    try { $listener.LocalEndpoint.Port } finally { $listener.Stop() }
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

Export-ModuleMember -Function *

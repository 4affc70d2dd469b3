# Helpers shared by the Pester suites: free ports, child pwsh processes, raw TCP clients, bounded waits.

# Generous: a child pwsh that starts and imports the module took over 20 s on a loaded 2-core machine.
$script:Bound = [TimeSpan]::FromSeconds(60)

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

# Runs pwsh with $Arguments to its end (bounded) and returns its exit code and output lines (stdout, then
# stderr). $Environment changes the child's environment: a $null value removes the variable.
function Invoke-ChildPwsh {
    param([Parameter(Mandatory)] [string[]] $Arguments, [hashtable] $Environment = @{})
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
        # Three times the usual bound: a pwsh that starts, imports the module and serves, on a busy machine.
        if (-not $process.WaitForExit([int](3 * $script:Bound.TotalMilliseconds))) {
            $process.Kill($true)
            throw "pwsh $Arguments did not end within $(3 * $script:Bound)."
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

Export-ModuleMember -Function *

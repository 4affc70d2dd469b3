BeforeAll {
    Import-Module $env:KEYSHELL_MODULE -Force
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force

    # The error New-KeyFault throws for these parameters.
    function Get-FaultError([hashtable] $Parameters) {
        try { $null = New-KeyFault @Parameters; $null } catch { $_ }
    }
}

Describe 'New-KeyFault' {
    It 'returns a typed fault with each type''s defaults' {
        $delay = New-KeyFault -Type Delay
        $delay.PSObject.TypeNames[0] | Should -Be 'KeyShell.Engine.Faults.KeyFault'
        $delay.Type | Should -Be 'Delay'
        $delay.DelayMilliseconds | Should -Be 1000
        $delay.JitterMilliseconds | Should -Be 0
        $delay.ByteCount | Should -BeNullOrEmpty
        $delay.ClientId | Should -Be '*'
        $delay.Key | Should -BeNullOrEmpty
        $delay.Probability | Should -Be 1
        $delay.Every | Should -Be 1
        $delay.After | Should -Be 0
        $delay.Direction | Should -Be 'Reply'

        (New-KeyFault Slice).DelayMilliseconds | Should -Be 10
        (New-KeyFault Slice).ByteCount | Should -Be 1
        (New-KeyFault Garbage).ByteCount | Should -Be 16
        (New-KeyFault Truncate).ByteCount | Should -BeNullOrEmpty
        (New-KeyFault Refuse).Direction | Should -Be 'Request'
        foreach ($type in 'Stall', 'Reset', 'Close', 'Refuse') {
            $fault = New-KeyFault -Type $type
            $fault.DelayMilliseconds | Should -BeNullOrEmpty -Because "$type holds nothing"
            $fault.ByteCount | Should -BeNullOrEmpty -Because "$type counts no bytes"
        }
    }

    It 'takes every parameter of DESIGN section 6 and what Slice, Truncate and Garbage need' {
        $fault = New-KeyFault -Type Delay -DelayMilliseconds 250 -JitterMilliseconds 40 -ClientId 'worker-*' -Key 7, 8 -Probability 0.25 -Every 3 -After 2 -Direction Request
        $fault.DelayMilliseconds | Should -Be 250
        $fault.JitterMilliseconds | Should -Be 40
        $fault.ClientId | Should -Be 'worker-*'
        $fault.Key | Should -Be '7', '8'
        $fault.Probability | Should -Be 0.25
        $fault.Every | Should -Be 3
        $fault.After | Should -Be 2
        $fault.Direction | Should -Be 'Request'

        (New-KeyFault -Type Slice -ByteCount 4 -DelayMilliseconds 50 -JitterMilliseconds 5).ByteCount | Should -Be 4
        (New-KeyFault -Type Truncate -ByteCount 0).ByteCount | Should -Be 0
        (New-KeyFault -Type Garbage -ByteCount 64).ByteCount | Should -Be 64
        (New-KeyFault Reset -Probability 0).Probability | Should -Be 0
    }

    It 'rejects <Name> with InvalidFault, the value as target and a sentence that says why' -ForEach @(
        @{ Name = 'a delay on a Reset'; Parameters = @{ Type = 'Reset'; DelayMilliseconds = 100 }; Target = 100; Message = 'DelayMilliseconds applies to Delay and Slice faults*a Reset fault does not take it.' }
        @{ Name = 'a jitter on a Stall'; Parameters = @{ Type = 'Stall'; JitterMilliseconds = 5 }; Target = 5; Message = 'JitterMilliseconds applies to Delay and Slice faults only*' }
        @{ Name = 'a byte count on a Delay'; Parameters = @{ Type = 'Delay'; ByteCount = 3 }; Target = 3; Message = 'ByteCount applies to Slice*Truncate*Garbage*' }
        @{ Name = 'a negative delay'; Parameters = @{ Type = 'Delay'; DelayMilliseconds = -1 }; Target = -1; Message = 'DelayMilliseconds must be between 0 and 3,600,000; -1 is not.' }
        @{ Name = 'a delay over an hour'; Parameters = @{ Type = 'Delay'; DelayMilliseconds = 3600001 }; Target = 3600001; Message = 'DelayMilliseconds must be between*' }
        @{ Name = 'a slice of no bytes'; Parameters = @{ Type = 'Slice'; ByteCount = 0 }; Target = 0; Message = 'ByteCount must be between 1 and*' }
        @{ Name = 'no garbage'; Parameters = @{ Type = 'Garbage'; ByteCount = 0 }; Target = 0; Message = 'ByteCount must be between 1 and*' }
        @{ Name = 'a probability over 1'; Parameters = @{ Type = 'Reset'; Probability = 1.5 }; Target = 1.5; Message = 'Probability must be between 0 and 1*1.5 is not.' }
        @{ Name = 'a negative probability'; Parameters = @{ Type = 'Reset'; Probability = -0.1 }; Target = -0.1; Message = 'Probability must be between 0 and 1*' }
        @{ Name = 'Every 0'; Parameters = @{ Type = 'Reset'; Every = 0 }; Target = 0; Message = 'Every must be 1 or more; 0 is not.' }
        @{ Name = 'a negative After'; Parameters = @{ Type = 'Reset'; After = -1 }; Target = -1; Message = 'After must be 0 or more; -1 is not.' }
        @{ Name = 'an open bracket'; Parameters = @{ Type = 'Reset'; ClientId = 'worker-[1' }; Target = 'worker-[1'; Message = "The client id pattern 'worker-``[1' is not a valid wildcard: a '``[' has no closing '``]'." }
        @{ Name = 'a key with a space'; Parameters = @{ Type = 'Reset'; Key = '7', 'a b' }; Target = 'a b'; Message = "'a b' is not a key: 1 or more visible ASCII characters, no spaces." }
        @{ Name = 'Refuse aimed at a client'; Parameters = @{ Type = 'Refuse'; ClientId = '3' }; Target = '3'; Message = 'A Refuse fault acts at accept*not with ClientId.' }
        @{ Name = 'Refuse aimed at a key'; Parameters = @{ Type = 'Refuse'; Key = '7' }; Target = '7'; Message = 'A Refuse fault acts at accept*not with Key.' }
        @{ Name = 'Refuse on the reply'; Parameters = @{ Type = 'Refuse'; Direction = 'Reply' }; Target = 'Reply'; Message = 'A Refuse fault closes the connection at accept*no Reply direction.' }
    ) {
        $failure = Get-FaultError $Parameters
        $failure | Should -Not -BeNullOrEmpty
        $failure.FullyQualifiedErrorId | Should -Be 'InvalidFault,KeyShell.Commands.NewKeyFaultCommand'
        $failure.CategoryInfo.Category | Should -Be 'InvalidArgument'
        "$($failure.TargetObject)" | Should -Be "$Target"
        $failure.Exception.Message | Should -BeLike $Message
        $failure.Exception.Message | Should -Not -Match 'Parameter ''|KeyShell\.Engine|FaultDefinitionException'
    }

    It 'rejects an unknown type when binding, naming the types' {
        { New-KeyFault -Type Bandwidth } | Should -Throw -ExpectedMessage '*Delay, Stall, Reset, Close, Truncate, Garbage, Slice, Refuse*'
    }

    It 'reads -ClientId as -like reads a wildcard' {
        $patterns = '*', '3', 'worker-*', '*-1', 'w?rker-1', '[12]', '[a-c]x', 'a*b*c', '`*', 'WORKER-*', '*[0-9]', '??'
        $ids = '3', '33', 'worker-1', 'Worker-12', 'boss-1', 'w0rker-1', '1', '2', 'bx', 'Cx', 'dx', 'aXbYc', 'ab', '*', 'x9', 'xy'
        foreach ($pattern in $patterns) {
            $fault = New-KeyFault -Type Reset -ClientId $pattern
            foreach ($id in $ids) {
                $fault.ClientIdPattern.IsMatch($id) | Should -Be ($id -like $pattern) -Because "'$id' -like '$pattern'"
            }
        }
    }

    It 'shows in its table view what each fault does' {
        $text = @(
            New-KeyFault Delay -DelayMilliseconds 200 -JitterMilliseconds 50
            New-KeyFault Slice -ByteCount 4 -DelayMilliseconds 20
            New-KeyFault Truncate
            New-KeyFault Truncate -ByteCount 5
            New-KeyFault Garbage -ByteCount 8
            New-KeyFault Stall -ClientId 'worker-*' -Key 7, 8
            New-KeyFault Refuse -Every 3
        ) | Format-Table | Out-String -Width 200
        foreach ($expected in 'holds 200 ±50 ms', '4 B per piece, 20 ms apart', 'sends half, closes', 'sends 5 B, closes', 'sends 8 random B, closes', 'never replies', 'worker-*', '7,8', 'closes at accept') {
            $text | Should -Match ([regex]::Escape($expected))
        }
        "$(New-KeyFault Reset -Probability 0.3 -ClientId 3)" | Should -Be 'Reset, Reply, client 3, probability 0.3'
    }
}

Describe 'Start-KeyServer -Fault and Set-KeyServer -Fault' {
    BeforeAll {
        # The bytes a raw client reads until the end, or the error that ended its read (a reset).
        function Read-Raw([int] $Port, [string] $Text) {
            $client = [System.Net.Sockets.TcpClient]::new()
            try {
                $client.Connect([System.Net.IPAddress]::Loopback, $Port)
                $client.ReceiveTimeout = 10000
                $stream = $client.GetStream()
                $bytes = [System.Text.Encoding]::ASCII.GetBytes($Text)
                $stream.Write($bytes, 0, $bytes.Length)
                $received = [System.IO.MemoryStream]::new()
                $buffer = [byte[]]::new(4096)
                try {
                    while (($count = $stream.Read($buffer, 0, $buffer.Length)) -gt 0) { $received.Write($buffer, 0, $count) }
                    [pscustomobject]@{ Bytes = $received.ToArray(); Text = [System.Text.Encoding]::ASCII.GetString($received.ToArray()); Error = $null }
                }
                catch {
                    $socket = $_.Exception.InnerException
                    while ($socket -and $socket -isnot [System.Net.Sockets.SocketException]) { $socket = $socket.InnerException }
                    [pscustomobject]@{ Bytes = $received.ToArray(); Text = ''; Error = $socket.SocketErrorCode }
                }
            }
            finally { $client.Dispose() }
        }

        function Get-FaultLines([string] $Path) { @(Get-Content $Path | Where-Object { $_ -like 'SYSTEM: Fault *' }) }
    }

    AfterEach { Get-KeyServer | Stop-KeyServer }

    It 'takes the faults and the seed, and shows them and their count' {
        $fault = New-KeyFault -Type Close -Key 2
        $server = Start-KeyServer -Port 0 -NoLog -Fault $fault -FaultSeed 9
        $server.FaultSet.Faults | Should -Be $fault
        $server.FaultSet.Seed | Should -Be 9
        (Read-Raw $server.Port "1 1`n1 2`n").Text | Should -Be "Response for the key 1 : 45`n"
        (Get-KeyServer -Port $server.Port).Faults | Should -Be 1
        $list = $server | Format-List | Out-String -Width 200
        $list | Should -Match 'Faults\s+: 1'
        $list | Should -Match 'FaultSet\s+: Close, Reply, client \*, key 2 \(seed 9\)'
    }

    It 'puts each type on the wire as its help says' {
        $log = Join-Path $TestDrive 'wire.log'
        $faults = @(
            New-KeyFault -Type Close -ClientId close
            New-KeyFault -Type Reset -ClientId reset
            New-KeyFault -Type Truncate -ByteCount 8 -ClientId truncate
            New-KeyFault -Type Garbage -ByteCount 12 -ClientId garbage
            New-KeyFault -Type Delay -DelayMilliseconds 20 -ClientId delay
            New-KeyFault -Type Slice -ByteCount 3 -DelayMilliseconds 1 -ClientId slice
        )
        $server = Start-KeyServer -Port 0 -LogPath $log -Fault $faults -FaultSeed 5
        (Read-Raw $server.Port "close 1`n").Text | Should -BeExactly ''
        (Read-Raw $server.Port "reset 1`n").Error | Should -Be 'ConnectionReset'
        (Read-Raw $server.Port "truncate 1`n").Text | Should -BeExactly 'Response'
        (Read-Raw $server.Port "garbage 1`n").Bytes | Should -Be $server.FaultSet.CreateSelector().SelectAt('garbage', '1', 1).GarbageBytes()
        Invoke-RawRequest -Port $server.Port -Text "delay 1`ndelay 2`n" -Lines 2 | Should -BeExactly "Response for the key 1 : 45`nResponse for the key 2 : 78`n"
        Invoke-RawRequest -Port $server.Port -Text "slice 3`n" -Lines 1 | Should -BeExactly "Response for the key 3 : 23`n"
        $server | Stop-KeyServer
        $lines = Get-FaultLines $log
        $lines | Should -Be 'SYSTEM: Fault close (close 1)', 'SYSTEM: Fault reset (reset 1)', 'SYSTEM: Fault truncate (truncate 1)', 'SYSTEM: Fault garbage (garbage 1)', 'SYSTEM: Fault delay (delay 1)', 'SYSTEM: Fault delay (delay 2)', 'SYSTEM: Fault slice (slice 3)'
        (Test-KeyConversation -Path $log -Detailed).Faults | Should -Be 7
        $log | Should -BeValidKeyConversation
    }

    It 'refuses connections at accept, logged and counted as faults' {
        $log = Join-Path $TestDrive 'refuse.log'
        $server = Start-KeyServer -Port 0 -LogPath $log -Fault (New-KeyFault -Type Refuse -After 1)
        Invoke-RawRequest -Port $server.Port -Text "1 1`n" -Lines 1 | Should -BeExactly "Response for the key 1 : 45`n"
        $second = Read-Raw $server.Port "1 2`n"
        $second.Bytes.Count | Should -Be 0
        Wait-Until { $server.Faults -eq 1 } -Because 'the refusal to be counted'
        $server.Rejected | Should -Be 0
        $server | Stop-KeyServer
        Get-FaultLines $log | Should -Be 'SYSTEM: Fault refuse (connection 2)'
    }

    It 'gives Invoke-KeyClient the errors its help names under Reset, Close and Stall' {
        $faults = @(
            New-KeyFault -Type Reset -ClientId 1
            New-KeyFault -Type Close -ClientId 2
            New-KeyFault -Type Stall -ClientId 3
        )
        $log = Join-Path $TestDrive 'client.log'
        $server = Start-KeyServer -Port 0 -LogPath $log -Fault $faults
        $replies = Invoke-KeyClient -Sequences '1 1', '2 2', '3 3', '4 4' -Port $server.Port -TimeoutSec 2 -ErrorVariable failures -ErrorAction SilentlyContinue
        $replies.ClientId | Should -Be '4'
        $ids = @($failures | ForEach-Object { $_.FullyQualifiedErrorId.Split(',')[0] } | Sort-Object)
        $ids | Should -Be 'ConnectionLost', 'ConnectionLost', 'ReplyTimeout'
        $server | Stop-KeyServer
        $log | Should -BeValidKeyConversation
    }

    It 'faults the same requests on every run: eight sequences in parallel, three runs, one seed' {
        $sequences = 1..8 | ForEach-Object { "$_ 0 1 2 3 4 5 6 7 8 9" }
        $runs = foreach ($run in 1..3) {
            $log = Join-Path $TestDrive "run$run.log"
            $server = Start-KeyServer -Port 0 -LogPath $log -Fault (New-KeyFault -Type Reset -Probability 0.3) -FaultSeed 7
            $null = Invoke-KeyClient -Sequences $sequences -Port $server.Port -ErrorAction SilentlyContinue
            $server | Stop-KeyServer
            $log | Should -BeValidKeyConversation
            (Test-KeyConversation -Path $log -Detailed).Faults | Should -BeGreaterThan 0
            , @(Get-FaultLines $log | Sort-Object)
        }

        $runs[0].Count | Should -BeGreaterThan 0
        $runs[1] | Should -Be $runs[0]
        $runs[2] | Should -Be $runs[0]
    }

    It 'swaps the whole set live; -Fault @() removes it; -FaultSeed alone keeps the faults' {
        $server = Start-KeyServer -Port 0 -NoLog
        Invoke-RawRequest -Port $server.Port -Text "1 1`n" -Lines 1 | Should -BeExactly "Response for the key 1 : 45`n"
        Set-KeyServer -Port $server.Port -Fault (New-KeyFault -Type Close)
        (Read-Raw $server.Port "1 1`n").Text | Should -BeExactly ''
        Set-KeyServer -Port $server.Port -FaultSeed 3
        $server.FaultSet.Seed | Should -Be 3
        $server.FaultSet.Faults.Count | Should -Be 1
        $server | Set-KeyServer -Fault @()
        $server.FaultSet.IsEmpty | Should -BeTrue
        Invoke-RawRequest -Port $server.Port -Text "1 1`n" -Lines 1 | Should -BeExactly "Response for the key 1 : 45`n"
        $server.Faults | Should -Be 1
    }

    It 'rejects -Fault $null with InvalidFault, before any server changes' {
        $server = Start-KeyServer -Port 0 -NoLog -Fault (New-KeyFault -Type Close)
        { Set-KeyServer -Port $server.Port -Fault $null } | Should -Throw -ErrorId 'InvalidFault,KeyShell.Commands.SetKeyServerCommand'
        $server.FaultSet.Faults.Count | Should -Be 1
        { Start-KeyServer -Port 0 -NoLog -Fault @((New-KeyFault -Type Close), $null) } | Should -Throw -ErrorId 'InvalidFault,KeyShell.Commands.StartKeyServerCommand'
    }
}

Describe 'Start-KeyServer -Fault -Wait' {
    It 'shows each fault applied on the console, as the log has it' {
        $directory = New-TestDirectory
        $child = Start-ChildPwsh -Directory $directory -Command "Start-KeyServer -Port 0 -NoLog -Fault (New-KeyFault -Type Close -Key 7) -Wait"
        try {
            $port = [int](Wait-ChildOutput $child 'Server waiting for connexion on the port (\d+)\.\.\.')[1]
            Invoke-RawRequest -Port $port -Text "3 7`n" | Should -BeExactly ''
            Wait-ChildOutput $child '^Fault close \(3 7\)$' | Out-Null
        }
        finally { Stop-ChildPwsh $child }
    }
}

Describe 'docs/examples/Faults.Tests.ps1' {
    It 'passes, as a user runs it' {
        $pester = Join-Path $env:KEYSHELL_NUGET_PACKAGES 'pester/5.7.1/tools/Pester.psd1'
        $example = Join-Path $PSScriptRoot '../../docs/examples/Faults.Tests.ps1'
        $script = "Import-Module '$pester'; `$r = Invoke-Pester -Path '$example' -PassThru -Output Detailed; 'RESULT {0} {1}' -f `$r.PassedCount, `$r.FailedCount"
        # The file imports KeyShell by name, as an installed module: the module under test is found on PSModulePath.
        $modules = Split-Path (Split-Path $env:KEYSHELL_MODULE)
        $run = Invoke-ChildPwsh -Arguments '-NoProfile', '-NonInteractive', '-Command', $script -Environment @{ PSModulePath = $modules + [System.IO.Path]::PathSeparator + $env:PSModulePath }
        $run.Output | Should -Contain 'RESULT 2 0' -Because ($run.Output -join "`n")
    }
}

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

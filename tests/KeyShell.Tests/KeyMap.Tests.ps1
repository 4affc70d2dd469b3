BeforeAll {
    Import-Module $env:KEYSHELL_MODULE -Force
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    $script:Directory = New-TestDirectory
}

AfterAll { Get-KeyServer | Stop-KeyServer }

Describe '-KeyMap that is not one map of keys to strings or numbers' {
    AfterEach { Get-KeyServer | Stop-KeyServer }

    It 'is InvalidKeyMap from a .json file holding <Case>, naming the file and the value' -ForEach @(
        @{ Case = 'an array'; Text = '[1,2,3]'; Shows = 'holds an array ([1,2,3])' }
        @{ Case = 'a string'; Text = '"just a string"'; Shows = 'holds a string ("just a string")' }
        @{ Case = 'a number'; Text = '42'; Shows = 'holds a number (42)' }
        @{ Case = 'null'; Text = 'null'; Shows = "holds JSON's null (null)" }
        @{ Case = 'nothing'; Text = ''; Shows = 'is empty' }
        @{ Case = 'no keys'; Text = '{}'; Shows = 'has no keys' }
        @{ Case = 'a nested object'; Text = '{ "1": 45, "a": { "b": 1 } }'; Shows = "the value of key 'a' is a nested object (@{b = 1})" }
        @{ Case = 'a nested list'; Text = '{ "a": [1, 2] }'; Shows = "the value of key 'a' is a list (@(1, 2))" }
        @{ Case = 'a null value'; Text = '{ "a": null }'; Shows = "the value of key 'a' is `$null (empty)" }
        @{ Case = 'an empty value'; Text = '{ "a": "" }'; Shows = "the value of key 'a' is empty ('')" }
        @{ Case = 'a Boolean value'; Text = '{ "a": true }'; Shows = "the value of key 'a' is a Boolean (`$true)" }
        @{ Case = 'broken JSON'; Text = '{ "a": 1'; Shows = 'is not valid JSON' }
    ) {
        $file = Join-Path $Directory 'map.json'
        Set-Content -Path $file -Value $Text
        foreach ($command in { Start-KeyServer -Port 0 -NoLog -KeyMap $file }, { Start-KeyServer -Port 0 -NoLog | Set-KeyServer -KeyMap $file }) {
            $errors = Get-CommandErrors $command
            $errors.Count | Should -Be 1 -Because "one error, and no stray one before it ($($errors -join ' | '))"
            $errors[0].FullyQualifiedErrorId | Should -BeLike 'InvalidKeyMap,*'
            $errors[0].CategoryInfo.Category | Should -Be 'InvalidArgument'
            $errors[0].TargetObject | Should -Be $file
            $errors[0].Exception.Message | Should -BeLike "The key map file '$file'*"
            $errors[0].Exception.Message | Should -Match ([regex]::Escape($Shows))
            $errors[0].Exception.Message | Should -Not -Match '\(Parameter '
            Get-KeyServer | Stop-KeyServer
        }
    }

    It 'is InvalidKeyMap from a .psd1 file holding <Case>, with no stray error before it' -ForEach @(
        @{ Case = 'a broken hashtable'; Text = "@{ a = 1"; Shows = 'is not a valid PowerShell data file: line 1, column' }
        @{ Case = 'an array'; Text = '@(1, 2, 3)'; Shows = 'holds an array (@(1, 2, 3))' }
        @{ Case = 'a string'; Text = "'text'"; Shows = "holds a string ('text')" }
        @{ Case = '$null'; Text = '$null'; Shows = 'holds $null' }
        @{ Case = 'nothing'; Text = ''; Shows = 'holds nothing' }
        @{ Case = 'a command'; Text = 'Get-Date'; Shows = 'holds a command (Get-Date)' }
        @{ Case = 'a value computed'; Text = '@{ a = $(Get-Date) }'; Shows = 'holds a value that is not a constant: line 1, $(Get-Date)' }
        @{ Case = 'a nested hashtable'; Text = "@{ a = @{ b = 1 } }"; Shows = "the value of key 'a' is a nested object (@{b = 1})" }
        @{ Case = 'a null value'; Text = '@{ a = $null }'; Shows = "the value of key 'a' is `$null (empty)" }
        @{ Case = 'an empty value'; Text = "@{ a = '' }"; Shows = "the value of key 'a' is empty ('')" }
    ) {
        $file = Join-Path $Directory 'map.psd1'
        Set-Content -Path $file -Value $Text
        $errors = Get-CommandErrors { Start-KeyServer -Port 0 -NoLog -KeyMap $file }
        $errors.Count | Should -Be 1 -Because "one error, and no stray one before it ($($errors -join ' | '))"
        $errors[0].FullyQualifiedErrorId | Should -Be 'InvalidKeyMap,KeyShell.Commands.StartKeyServerCommand'
        $errors[0].TargetObject | Should -Be $file
        $errors[0].Exception.Message | Should -BeLike "The key map file '$file'*"
        $errors[0].Exception.Message | Should -Match ([regex]::Escape($Shows))
        @(Get-KeyServer).Count | Should -Be 0
    }

    It 'is InvalidKeyMap from a hashtable whose value of a is <Case>' -ForEach @(
        @{ Case = 'a nested hashtable'; Value = @{ b = 1 }; Shows = 'a nested object (@{b = 1})' }
        @{ Case = 'a [pscustomobject]'; Value = [pscustomobject]@{ x = 1 }; Shows = 'a nested object (@{x = 1})' }
        @{ Case = 'an array'; Value = @(1, 2); Shows = 'a list (@(1, 2))' }
        @{ Case = '$null'; Value = $null; Shows = '$null (empty)' }
        @{ Case = 'empty'; Value = ''; Shows = "empty ('')" }
        @{ Case = 'blank'; Value = '   '; Shows = "empty ('   ')" }
        @{ Case = 'a Boolean'; Value = $false; Shows = 'a Boolean ($false)' }
        @{ Case = 'a date'; Value = [datetime]::new(2024, 1, 2); Shows = 'a date (' }
    ) {
        $map = @{ '1' = 45; a = $Value }
        $errors = Get-CommandErrors { Start-KeyServer -Port 0 -NoLog -KeyMap $map }
        $errors.Count | Should -Be 1
        $errors[0].FullyQualifiedErrorId | Should -Be 'InvalidKeyMap,KeyShell.Commands.StartKeyServerCommand'
        $errors[0].TargetObject | Should -Be $map
        $errors[0].Exception.Message | Should -BeLike "-KeyMap: the value of key 'a' is *"
        $errors[0].Exception.Message | Should -Match ([regex]::Escape($Shows))
        @(Get-KeyServer).Count | Should -Be 0
    }

    It 'names the key and no .NET parameter when a key is not a protocol token' {
        $errors = Get-CommandErrors { Start-KeyServer -Port 0 -NoLog -KeyMap @{ 'two words' = 1 } }
        $errors[0].Exception.Message | Should -Be "-KeyMap: the key 'two words' is not a protocol token: 1 or more visible ASCII characters, no spaces."
        $map = @{ 1 = 'one' }
        $map['1'] = 'also one'
        (Get-CommandErrors { Start-KeyServer -Port 0 -NoLog -KeyMap $map })[0].Exception.Message | Should -Match "the key '1' appears twice"
    }

    It 'is InvalidKeyMap for a -KeyMap that is neither a map nor a path (<Shows>)' -ForEach @(
        @{ Value = 42; Shows = 'a number (42)' }
        @{ Value = $true; Shows = 'a Boolean ($true)' }
    ) {
        $errors = Get-CommandErrors { Start-KeyServer -Port 0 -NoLog -KeyMap $Value }
        $errors[0].FullyQualifiedErrorId | Should -Be 'InvalidKeyMap,KeyShell.Commands.StartKeyServerCommand'
        $errors[0].TargetObject | Should -Be $Value
        $errors[0].Exception.Message | Should -Be "-KeyMap takes a hashtable, or the path of a .json or .psd1 file; it was given $Shows."
    }

    It 'still takes keys of different case from JSON, numbers of any size, a [pscustomobject] and date-like strings' {
        $file = Join-Path $Directory 'cases.json'
        Set-Content -Path $file -Value '{ "a": 1.5, "A": "2024-01-01T00:00:00", "big": 12345678901234567890 }'
        $server = Start-KeyServer -Port 0 -NoLog -KeyMap $file
        (Invoke-KeyClient -Sequences 'c a A big' -Port $server.Port -Connection Persistent).Reply |
            Should -Be 'Response for the key a : 1.5', 'Response for the key A : 2024-01-01T00:00:00', 'Response for the key big : 12345678901234567890'
        $custom = Start-KeyServer -Port 0 -NoLog -KeyMap ([pscustomobject]@{ x = 'y' })
        (Invoke-KeyClient -Sequences 'c x' -Port $custom.Port).Reply | Should -Be 'Response for the key x : y'
    }
}

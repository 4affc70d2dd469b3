BeforeAll {
    Import-Module $env:KEYSHELL_MODULE -Force
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    $script:Directory = New-TestDirectory
    $script:Expected = 'Compare-KeyConversation', 'ConvertTo-KeySequence', 'Export-KeyMeasurement', 'Get-KeyConversation', 'Get-KeyServer', 'Invoke-KeyClient', 'Measure-KeyServer', 'Merge-KeyMeasurement', 'New-KeyFault', 'Set-KeyServer', 'Start-KeyServer', 'Stop-KeyServer', 'Test-KeyConversation', 'Test-KeyServer'
    $script:ExpectedFunctions = @('Use-KeyServer')
}

AfterAll { Get-KeyServer | Stop-KeyServer }

Describe 'The module manifest' {
    It 'passes Test-ModuleManifest and exports the cmdlets and functions by name' {
        $manifest = Test-ModuleManifest -Path $env:KEYSHELL_MODULE
        $manifest.CompatiblePSEditions | Should -Be 'Desktop', 'Core'
        $manifest.PowerShellVersion | Should -Be '5.1'
        $data = Import-PowerShellDataFile $env:KEYSHELL_MODULE
        $data.CmdletsToExport | Sort-Object | Should -Be $Expected
        $data.CmdletsToExport | Should -Not -Contain '*'
        $data.FunctionsToExport | Should -Be $ExpectedFunctions
        (Get-Command -Module KeyShell -CommandType Cmdlet).Name | Sort-Object | Should -Be $Expected
        (Get-Command -Module KeyShell -CommandType Function).Name | Should -Be $ExpectedFunctions -Because 'the script half''s helpers stay private'
    }

    It 'takes its version from Directory.Build.props, the one place it lives' {
        $props = [xml](Get-Content -Raw (Join-Path $PSScriptRoot '../../Directory.Build.props'))
        (Test-ModuleManifest -Path $env:KEYSHELL_MODULE).Version | Should -Be ([version]$props.Project.PropertyGroup.Version)
    }

    It 'has a changelog entry for its version' {
        $version = (Test-ModuleManifest -Path $env:KEYSHELL_MODULE).Version.ToString(3)
        Get-Content -Raw (Join-Path $PSScriptRoot '../../CHANGELOG.md') | Should -Match ([regex]::Escape("[$version]"))
    }
}

Describe 'Every cmdlet' -ForEach @(
    'Compare-KeyConversation', 'ConvertTo-KeySequence', 'Export-KeyMeasurement', 'Get-KeyConversation', 'Get-KeyServer', 'Invoke-KeyClient', 'Measure-KeyServer', 'Merge-KeyMeasurement', 'New-KeyFault', 'Set-KeyServer', 'Start-KeyServer', 'Stop-KeyServer', 'Test-KeyConversation', 'Test-KeyServer', 'Use-KeyServer'
) {
    It '<_> declares its output type, and each output type has a default view' {
        $types = (Get-Command $_).OutputType.Name
        $types | Should -Not -BeNullOrEmpty
        foreach ($type in $types | Where-Object { $_ -notlike 'System.*' }) {
            $views = @((Get-FormatData -TypeName $type).FormatViewDefinition)
            $views | Should -Not -BeNullOrEmpty -Because "$type needs a view"
            $views[0].Control | Should -BeOfType [System.Management.Automation.TableControl] -Because "$type's default view is a table"
        }
    }
}

Describe 'Tab completion' {
    AfterEach { Get-KeyServer | Stop-KeyServer }

    BeforeAll {
        function Get-Completion([string] $Line) { @((TabExpansion2 -inputScript $Line -cursorColumn $Line.Length).CompletionMatches.CompletionText) }
        # Completion must never fall back to file names: a folder with a file in it shows whether it does.
        $script:CompletionFolder = New-TestDirectory
        Set-Content -Path (Join-Path $CompletionFolder 'a-file.txt') -Value 'x'
    }
    BeforeEach { Push-Location $CompletionFolder }
    AfterEach { Pop-Location }

    It 'offers the running servers'' ports for -Port of <_>' -ForEach 'Stop-KeyServer', 'Get-KeyServer', 'Set-KeyServer', 'Invoke-KeyClient', 'Test-KeyServer', 'Measure-KeyServer' {
        $a = Start-KeyServer -Port 0 -NoLog
        $b = Start-KeyServer -Port 0 -NoLog
        $completions = Get-Completion "$_ -Port "
        $completions | Should -Contain ([string]$a.Port)
        $completions | Should -Contain ([string]$b.Port)
        $completions | Should -Not -Contain '8080'
        Get-Completion "$_ -Port $(([string]$a.Port).Substring(0, 3))" | Should -Contain ([string]$a.Port)
    }

    It 'offers no file names for -Port of <_> when no server runs' -ForEach 'Stop-KeyServer', 'Get-KeyServer', 'Set-KeyServer' {
        Get-KeyServer | Stop-KeyServer
        Get-Completion "$_ -Port " | Should -BeNullOrEmpty
    }

    It 'offers the seed''s 8080, not file names, for -Port of <_> when no server runs' -ForEach 'Invoke-KeyClient', 'Test-KeyServer', 'Measure-KeyServer' {
        Get-KeyServer | Stop-KeyServer
        Get-Completion "$_ -Port " | Should -Be '8080'
    }

    It 'offers 8080 and 0 for Start-KeyServer -Port' {
        Get-KeyServer | Stop-KeyServer
        Get-Completion 'Start-KeyServer -Port ' | Should -Be '8080', '0'
    }

    It 'offers loopback, every interface and each address of this machine for Start-KeyServer -Address' {
        $completions = Get-Completion 'Start-KeyServer -Address '
        $completions | Should -Not -Contain './a-file.txt'
        foreach ($address in '127.0.0.1', '::1', 'localhost', '0.0.0.0', '::') { $completions | Should -Contain $address }
        $machine = [System.Net.NetworkInformation.NetworkInterface]::GetAllNetworkInterfaces() |
            Where-Object OperationalStatus -EQ 'Up' | ForEach-Object { $_.GetIPProperties().UnicastAddresses.Address } |
            Where-Object { -not [System.Net.IPAddress]::IsLoopback($_) -and -not $_.IsIPv6LinkLocal }
        foreach ($address in $machine) { $completions | Should -Contain $address.ToString() }
        Get-Completion 'Start-KeyServer -Address 127.' | Should -Be '127.0.0.1'
    }

    It 'offers loopback and this machine''s addresses for -ComputerName of <_>, under its alias too' -ForEach 'Invoke-KeyClient', 'Test-KeyServer' {
        $completions = Get-Completion "$_ -ComputerName "
        foreach ($address in '127.0.0.1', 'localhost', '::1') { $completions | Should -Contain $address }
        $completions | Should -Not -Contain './a-file.txt'
        if ($_ -eq 'Test-KeyServer') { Get-Completion 'Test-KeyServer -Address loc' | Should -Be 'localhost' }
    }
}

Describe 'Progress' {
    BeforeAll { $script:Server = Start-KeyServer -Port 0 -NoLog }
    AfterAll { $Server | Stop-KeyServer }

    It 'shows Write-Progress on a long run, ending with a Completed record' {
        $shell = [powershell]::Create()
        try {
            $null = $shell.AddScript("Import-Module '$env:KEYSHELL_MODULE'; `$null = Invoke-KeyClient -Sequences (1..10 | % { `"`$_ `" + ((1..100 | % { `$_ % 10 }) -join ' ') }) -Port $($Server.Port) -Connection Persistent")
            $null = $shell.Invoke()
            $shell.HadErrors | Should -BeFalse
            $shell.Streams.Progress.Count | Should -BeGreaterThan 0
            $shell.Streams.Progress[-1].RecordType | Should -Be 'Completed'
        }
        finally { $shell.Dispose() }
    }

    It 'honours $ProgressPreference and stays quiet on short runs' {
        foreach ($script in "`$ProgressPreference = 'SilentlyContinue'; `$null = Invoke-KeyClient -Sequences (1..10 | % { `"`$_ `" + ((1..100 | % { `$_ % 10 }) -join ' ') }) -Port $($Server.Port)",
            "`$null = Invoke-KeyClient -Sequences '1 1 2 3' -Port $($Server.Port)") {
            $shell = [powershell]::Create()
            try {
                $null = $shell.AddScript("Import-Module '$env:KEYSHELL_MODULE'; $script")
                $null = $shell.Invoke()
                $shell.Streams.Progress.Count | Should -Be 0
            }
            finally { $shell.Dispose() }
        }
    }
}

Describe 'Dependency isolation' {
    It 'works beside another version of Microsoft.Extensions.Logging.Abstractions loaded first, and that one keeps working' {
        $other = Join-Path $env:KEYSHELL_NUGET_PACKAGES 'microsoft.extensions.logging.abstractions/6.0.0/lib/netstandard2.0/Microsoft.Extensions.Logging.Abstractions.dll'
        Test-Path $other | Should -BeTrue -Because 'build.ps1 restores tests/Tools/Tools.csproj, which downloads it'
        $script = @"
Add-Type -Path '$other'
`$first = [Microsoft.Extensions.Logging.Abstractions.NullLogger]::Instance
Import-Module '$env:KEYSHELL_MODULE'
`$server = Start-KeyServer -Port 0 -LogPath '$(Join-Path $Directory 'isolation.txt')'
`$reply = Invoke-KeyClient -Sequences '1 7' -Port `$server.Port
`$server | Stop-KeyServer
`$versions = [AppDomain]::CurrentDomain.GetAssemblies() | Where-Object { `$_.GetName().Name -eq 'Microsoft.Extensions.Logging.Abstractions' } | ForEach-Object { `$_.GetName().Version.Major }
[pscustomobject]@{ Reply = `$reply.Reply; Versions = (`$versions | Sort-Object) -join ','; FirstStillWorks = `$first.IsEnabled('Information') -eq `$false } | ConvertTo-Json -Compress
"@
        $json = & (Get-PwshPath) -NoProfile -NonInteractive -Command $script
        $LASTEXITCODE | Should -Be 0
        $result = $json | Select-Object -Last 1 | ConvertFrom-Json
        $result.Reply | Should -Be 'Response for the key 7 : 67'
        $result.Versions | Should -Be '6,8'
        $result.FirstStillWorks | Should -BeTrue
        Get-Content (Join-Path $Directory 'isolation.txt') | Should -Contain 'Server: 1 Response for the key 7 : 67'
    }
}

Describe 'The package' {
    It 'installs from a local file repository with Save-PSResource, then imports and works' {
        $env:KEYSHELL_PACKAGE | Should -Exist
        $repository = Join-Path $Directory 'repository'
        $installed = Join-Path $Directory 'installed'
        $null = New-Item -ItemType Directory -Path $repository, $installed
        Copy-Item $env:KEYSHELL_PACKAGE $repository
        $name = 'KeyShellTest' + [guid]::NewGuid().ToString('N').Substring(0, 8)
        Register-PSResourceRepository -Name $name -Uri $repository -Trusted
        try {
            Save-PSResource -Name KeyShell -Repository $name -Path $installed -TrustRepository
        }
        finally { Unregister-PSResourceRepository -Name $name }
        $manifest = Get-ChildItem $installed -Recurse -Filter KeyShell.psd1 | Select-Object -First 1
        $manifest | Should -Not -BeNullOrEmpty
        $script = "Import-Module '$($manifest.FullName)'; `$s = Start-KeyServer -Port 0 -NoLog; (Invoke-KeyClient -Sequences '1 1 2 3' -Port `$s.Port).Value -join ','; `$s | Stop-KeyServer"
        $output = & (Get-PwshPath) -NoProfile -NonInteractive -Command $script
        $LASTEXITCODE | Should -Be 0
        $output | Select-Object -Last 1 | Should -Be '45,78,23'
        Join-Path $manifest.Directory 'en-US/KeyShell.dll-Help.xml' | Should -Exist
    }
}

Describe 'The license' {
    It 'is the MIT license the manifest names, in the repository, the built module and the package' {
        $repository = Join-Path $PSScriptRoot '../../LICENSE'
        $repository | Should -Exist
        $text = Get-Content -Raw $repository
        $text | Should -Match '^MIT License'
        $text | Should -Match 'Permission is hereby granted, free of charge'
        (Import-PowerShellDataFile $env:KEYSHELL_MODULE).PrivateData.PSData.LicenseUri | Should -Be 'https://opensource.org/licenses/MIT'
        (Import-PowerShellDataFile $env:KEYSHELL_MODULE).Copyright | Should -Match 'MIT License'
        Get-Content -Raw (Join-Path (Split-Path $env:KEYSHELL_MODULE) 'LICENSE') | Should -Be $text

        Add-Type -AssemblyName System.IO.Compression.FileSystem
        $package = [System.IO.Compression.ZipFile]::OpenRead($env:KEYSHELL_PACKAGE)
        try {
            $entry = $package.Entries | Where-Object FullName -EQ 'LICENSE'
            $entry | Should -Not -BeNullOrEmpty -Because "the package holds $($package.Entries.FullName -join ', ')"
            $reader = [System.IO.StreamReader]::new($entry.Open())
            try { $reader.ReadToEnd() | Should -Be $text } finally { $reader.Dispose() }
        }
        finally { $package.Dispose() }
    }
}

Describe 'build.ps1 -Task Install' {
    It 'puts the built module where Import-Module KeyShell finds it by name, replacing a copy of the same version' {
        if ($IsWindows) { Set-ItResult -Skipped -Because 'on Windows the user module folder is Documents\PowerShell\Modules, which HOME does not move: the test would install into the real one' }
        $userHome = Join-Path $Directory 'home'
        $version = (Import-PowerShellDataFile $env:KEYSHELL_MODULE).ModuleVersion
        $target = Join-Path $userHome ".local/share/powershell/Modules/KeyShell/$version"
        $null = New-Item -ItemType Directory -Force -Path $target
        Set-Content (Join-Path $target 'left-by-an-older-build.txt') 'stale'

        # -NoBuild: this suite runs on the module built in out/KeyShell, which Install copies as it is.
        $build = Join-Path $PSScriptRoot '../../build.ps1'
        $install = Invoke-ChildPwsh -Arguments '-NoProfile', '-NonInteractive', '-File', $build, '-Task', 'Install', '-NoBuild' -Environment @{ HOME = $userHome; XDG_DATA_HOME = $null }
        $install.ExitCode | Should -Be 0 -Because ($install.Output -join "`n")
        $install.Output | Should -Contain "Installed KeyShell $version in $target"
        $install.Output | Should -Contain 'Next, in any new pwsh: Import-Module KeyShell'
        Join-Path $target 'KeyShell.psd1' | Should -Exist
        Join-Path $target 'left-by-an-older-build.txt' | Should -Not -Exist

        # A fresh pwsh of that user (no module path inherited from this one) imports it by name, and it works.
        $script = 'Import-Module KeyShell -ErrorAction Stop; (Get-Module KeyShell).ModuleBase; (Get-Command Start-KeyServer).Source; ' +
            '$s = Start-KeyServer -Port 0 -NoLog; Test-KeyServer -Port $s.Port; $s | Stop-KeyServer; $s.State'
        $fresh = Invoke-ChildPwsh -Arguments '-NoProfile', '-NonInteractive', '-Command', $script -Environment @{ HOME = $userHome; XDG_DATA_HOME = $null; PSModulePath = $null }
        $fresh.ExitCode | Should -Be 0 -Because ($fresh.Output -join "`n")
        $fresh.Output | Should -Be $target, 'KeyShell', 'True', 'Stopped'
    }
}

Describe 'Beyond one machine' {
    It 'returns reply objects that survive serialization through Start-Job' {
        $job = Start-Job -ScriptBlock {
            param($Module)
            Import-Module $Module
            $server = Start-KeyServer -Port 0 -NoLog
            Invoke-KeyClient -Sequences '1 1 2 3', '2 4' -Port $server.Port -Connection Persistent
            $server | Stop-KeyServer
        } -ArgumentList $env:KEYSHELL_MODULE
        try {
            $null = $job | Wait-Job -Timeout 60
            $replies = @($job | Receive-Job)
            $replies.Count | Should -Be 4
            $replies[0].PSObject.TypeNames[0] | Should -Be 'Deserialized.KeyShell.Engine.Client.KeyReply'
            ($replies | Where-Object ClientId -EQ '1').Value | Should -Be 45, 78, 23
            ($replies | Where-Object ClientId -EQ '2').Reply | Should -Be 'Response for the key 4 : 56'
            $replies[0].Latency | Should -Not -BeNullOrEmpty
        }
        finally { $job | Remove-Job -Force }
    }
}

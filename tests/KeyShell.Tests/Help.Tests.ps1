BeforeDiscovery {
    Import-Module $env:KEYSHELL_MODULE -Force
    # Use-KeyServer is a function; its help comes from the same MAML file (.ExternalHelp).
    $cmdletNames = (Get-Command -Module KeyShell -CommandType Cmdlet, Function).Name
    $examples = @(& (Join-Path $PSScriptRoot 'Get-HelpExamples.ps1') | ForEach-Object { @{ Command = $_.Command; Title = $_.Title } })
}

BeforeAll {
    Import-Module $env:KEYSHELL_MODULE -Force
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-Module (Join-Path $PSScriptRoot '../../src/Help/MarkdownHelp.psm1') -Force
    $script:Docs = Join-Path $PSScriptRoot '../../docs'
    $script:Common = [System.Management.Automation.Cmdlet]::CommonParameters + [System.Management.Automation.Cmdlet]::OptionalCommonParameters
    function Get-Page([string] $Name) { ConvertFrom-HelpMarkdown -Markdown (Get-Content -Raw (Join-Path $Docs "$Name.md")) }
    # A page's parameters, with those it takes from another command's page ("every parameter of [Start-KeyServer]").
    function Get-PageParameter($Page) { Get-DocumentedParameter -Page $Page -Pages $(if ($Page.ParametersFrom) { Get-Page $Page.ParametersFrom }) }
}

Describe 'The help of <_>' -ForEach $cmdletNames {
    BeforeAll {
        $script:Info = Get-Command $_
        $script:Page = Get-Page $_
        $script:Parameters = $Info.Parameters.PSBase.Keys | Where-Object { $_ -notin $Common } # PSBase: Measure-KeyServer has a parameter named Keys
    }

    It 'has a page with a synopsis, a description, inputs and outputs' {
        $Page.Name | Should -Be $_
        $Page.Synopsis | Should -Not -BeNullOrEmpty
        $Page.Description | Should -Not -BeNullOrEmpty
        $Page.Inputs | Should -Not -BeNullOrEmpty
        $Page.Outputs | Should -Not -BeNullOrEmpty
    }

    It 'documents every parameter, with type, default and pipeline input' {
        $documented = Get-PageParameter $Page
        foreach ($name in $Parameters) {
            $doc = $documented | Where-Object Name -EQ $name
            $doc | Should -Not -BeNullOrEmpty -Because "-$name must be documented"
            $doc.Description | Should -Not -BeNullOrEmpty -Because "-$name needs a description"
            $doc.Type | Should -Be $Info.Parameters[$name].ParameterType.Name -Because "the type of -$name"
            $mandatory = @($Info.Parameters[$name].ParameterSets.Values.IsMandatory) -contains $true
            $doc.Required | Should -Be ([string]$mandatory) -Because "whether -$name is required"
            $doc.DefaultValue | Should -Not -BeNullOrEmpty -Because "the default of -$name"
            $doc.Pipeline | Should -Not -BeNullOrEmpty -Because "the pipeline input of -$name"
        }
    }

    It 'names no parameter that does not exist' {
        $known = @($Parameters) + 'WhatIf', 'Confirm'
        foreach ($doc in $Page.Parameters) { $doc.Name | Should -BeIn $known -Because 'the docs must match the cmdlet' }
    }

    It 'has at least three examples' {
        $Page.Examples.Count | Should -BeGreaterOrEqual 3
    }

    It 'lists its errors with their ErrorIds' {
        $Page.Errors | Should -Not -BeNullOrEmpty
    }

    It 'shows its page in Get-Help -Full and -Examples' {
        $full = Get-Help $_ -Full
        $full.Synopsis | Should -Be $Page.Synopsis
        ($full.Description.Text -join ' ') | Should -Match ([regex]::Escape($Page.Description[0].Substring(0, 30)))
        foreach ($name in $Parameters) {
            ($full.Parameters.Parameter | Where-Object Name -EQ $name).Description | Should -Not -BeNullOrEmpty -Because "-$name in Get-Help"
        }
        @((Get-Help $_ -Examples).Examples.Example).Count | Should -Be $Page.Examples.Count
    }
}

Describe 'about_KeyShell' {
    It 'is shown by Get-Help, with the protocol, the log format, the limits and the threat model' {
        $text = Get-Help about_KeyShell | Out-String
        foreach ($topic in 'WIRE PROTOCOL', 'THE CONVERSATION LOG', 'LIMITS', 'THREAT MODEL', 'ERRORS') {
            $text | Should -Match $topic
        }
    }
}

Describe 'The help examples, run as written, one after another in one pwsh' {
    BeforeAll {
        # Every example of every page, in order, in one fresh pwsh that finds the module by name (as installed),
        # in one working folder: as a user who pastes them into one session, one after another.
        $script:All = @(& (Join-Path $PSScriptRoot 'Get-HelpExamples.ps1'))
        $folder = New-TestDirectory
        $examplesPath = Join-Path $folder 'examples.json'
        ConvertTo-Json -InputObject $All -Depth 3 | Set-Content -Path $examplesPath -Encoding utf8
        $arguments = @('-NoProfile', '-NonInteractive', '-File', (Join-Path $PSScriptRoot 'Invoke-HelpExamples.ps1'),
            '-ExamplesPath', $examplesPath, '-ResultsPath', (Join-Path $folder 'results.json'), '-Port', (Get-FreeFixedPort), '-WorkingDirectory', $folder)
        # Examples that reach load machines over SSH remoting (-HostName load1, load2) reach a throwaway sshd
        # on 127.0.0.1, whose sessions find the module under test by name.
        $script:Sshd = $null
        if ($All.Code -match '-HostName') {
            $script:Sshd = Start-TestSshd -ModulePath $env:KEYSHELL_MODULE
            if ($Sshd.Reason) { Write-Host "SKIPPED the remoting examples: $($Sshd.Reason)" }
            else {
                $sshPath = Join-Path $folder 'ssh.json'
                Get-TestSshParameters $Sshd | ConvertTo-Json -Depth 3 | Set-Content -Path $sshPath -Encoding utf8
                $arguments += @('-SshParametersPath', $sshPath)
            }
        }
        $modules = (Split-Path (Split-Path $env:KEYSHELL_MODULE)) + [System.IO.Path]::PathSeparator + $env:PSModulePath
        $script:Run = Invoke-ChildPwsh -Arguments $arguments -Environment @{ PSModulePath = $modules } -TimeoutSec 1200
        $resultsPath = Join-Path $folder 'results.json'
        $script:Results = if (Test-Path $resultsPath) { @(Get-Content -Raw $resultsPath | ConvertFrom-Json) } else { @() }
    }
    AfterAll { if ($Sshd) { Stop-TestSshd $Sshd } }

    It 'ran every example to its end' {
        $Run.ExitCode | Should -Be 0 -Because ($Run.Output -join "`n")
        $Results.Count | Should -Be $All.Count
    }

    It 'Example "<Title>" of <Command> runs as written and leaves nothing running' -ForEach $examples {
        $result = $Results | Where-Object { $_.Command -eq $Command -and $_.Title -eq $Title } | Select-Object -First 1
        $result | Should -Not -BeNullOrEmpty -Because 'the runner reports every example'
        if ($result.Skipped) { Set-ItResult -Skipped -Because $result.Skipped; return }
        $result.Error | Should -BeNullOrEmpty -Because "it printed:`n$($result.Output)"
        $result.Left | Should -BeNullOrEmpty -Because 'each example stops what it starts'
    }
}

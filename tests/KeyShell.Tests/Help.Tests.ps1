BeforeDiscovery {
    Import-Module $env:KEYSHELL_MODULE -Force
    Import-Module (Join-Path $PSScriptRoot '../../src/Help/MarkdownHelp.psm1') -Force
    $docs = Join-Path $PSScriptRoot '../../docs'
    $cmdletNames = (Get-Command -Module KeyShell -CommandType Cmdlet).Name
    $examples = foreach ($name in $cmdletNames) {
        $file = Join-Path $docs "$name.md"
        if (Test-Path $file) {
            foreach ($example in (ConvertFrom-HelpMarkdown -Markdown (Get-Content -Raw $file)).Examples) {
                @{ Command = $name; Title = $example.Title; Code = $example.Code }
            }
        }
    }
}

BeforeAll {
    Import-Module $env:KEYSHELL_MODULE -Force
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    Import-Module (Join-Path $PSScriptRoot '../../src/Help/MarkdownHelp.psm1') -Force
    $script:Docs = Join-Path $PSScriptRoot '../../docs'
    $script:Common = [System.Management.Automation.Cmdlet]::CommonParameters + [System.Management.Automation.Cmdlet]::OptionalCommonParameters
    function Get-Page([string] $Name) { ConvertFrom-HelpMarkdown -Markdown (Get-Content -Raw (Join-Path $Docs "$Name.md")) }
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
        foreach ($name in $Parameters) {
            $doc = $Page.Parameters | Where-Object Name -EQ $name
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

Describe 'Example "<Title>" of <Command>' -ForEach $examples {
    BeforeAll {
        # Examples that reach load machines over SSH remoting (-HostName load1, load2) run against a
        # throwaway sshd on 127.0.0.1, whose sessions find the module under test by name, as an installed
        # one; so do the jobs these examples start here.
        if ($Code -match '-HostName') {
            $script:Sshd = Start-TestSshd -ModulePath $env:KEYSHELL_MODULE
            if ($Sshd.Reason) { Write-Host "SKIPPED the remoting example '$Title': $($Sshd.Reason)" }
            $script:SavedModulePath = $env:PSModulePath
            $env:PSModulePath = (Split-Path (Split-Path $env:KEYSHELL_MODULE)) + [System.IO.Path]::PathSeparator + $env:PSModulePath
        }
    }
    AfterAll {
        if ($Code -match '-HostName') {
            Stop-TestSshd $Sshd
            $env:PSModulePath = $SavedModulePath
        }
    }
    BeforeEach {
        $script:Folder = New-TestDirectory
        Push-Location $Folder
        $script:Port = Get-FreePort
        # Examples are written for port 8080; here they run on a free port, against a live server.
        $PSDefaultParameterValues = @{ 'Start-KeyServer:Port' = $Port; 'Invoke-KeyClient:Port' = $Port; 'Test-KeyServer:Port' = $Port; 'Measure-KeyServer:Port' = $Port }
        if ($Code -notmatch 'Start-KeyServer') { $null = Start-KeyServer -Port $Port }
    }
    AfterEach {
        Get-KeyServer | Stop-KeyServer
        Get-Job | Remove-Job -Force
        Pop-Location
    }

    It 'runs' {
        $code = $Code -replace '\b8080\b', $Port
        if ($code -match '-HostName') {
            if ($Sshd.Reason) { Set-ItResult -Skipped -Because $Sshd.Reason; return }
            foreach ($entry in (Get-TestSshParameters $Sshd).GetEnumerator()) { $PSDefaultParameterValues["Invoke-Command:$($entry.Key)"] = $entry.Value }
            # The load machines and the server of the example are this machine.
            $code = $code -replace '\bload\d\b', '127.0.0.1' -replace '\bserver1\b', '127.0.0.1'
        }
        if ($code -match 'Start-KeyServer[^\r\n]*-Wait') {
            # A foreground server: stop it from another runspace once it is up (a stop that comes before the
            # foreground loop starts ends it as well). AfterEach removes the job, should the server never start.
            $null = Start-ThreadJob { Import-Module $using:env:KEYSHELL_MODULE; while (-not (Get-KeyServer)) { Start-Sleep -Milliseconds 50 }; Stop-KeyServer -All }
        }
        $ErrorActionPreference = 'Stop'
        { $null = & ([scriptblock]::Create($code)) } | Should -Not -Throw
    }
}

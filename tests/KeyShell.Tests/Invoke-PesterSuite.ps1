<#
.SYNOPSIS
    Runs the module's Pester tests; build.ps1 -Task Test starts it in a child pwsh.
.DESCRIPTION
    Writes NUnit XML and a JSON summary (Passed, Failed, Skipped) to ResultsDirectory. The module under
    test is passed to the tests through $env:KEYSHELL_MODULE.
#>
param(
    [Parameter(Mandatory)] [string] $PesterManifest,
    [Parameter(Mandatory)] [string] $ModuleManifest,
    [Parameter(Mandatory)] [string] $ResultsDirectory,
    [string] $Filter
)

$ErrorActionPreference = 'Stop'
Import-Module $PesterManifest -Force
$env:KEYSHELL_MODULE = (Resolve-Path $ModuleManifest).Path

$configuration = New-PesterConfiguration
$configuration.Run.Path = $PSScriptRoot
$configuration.Run.PassThru = $true
$configuration.Output.Verbosity = 'Detailed'
$configuration.TestResult.Enabled = $true
$configuration.TestResult.OutputFormat = 'NUnitXml'
$configuration.TestResult.OutputPath = Join-Path $ResultsDirectory 'pester.xml'
if ($Filter) { $configuration.Filter.FullName = "*$Filter*" }

$result = Invoke-Pester -Configuration $configuration
[pscustomobject]@{
    Passed  = $result.PassedCount
    Failed  = $result.FailedCount + $result.FailedBlocksCount + $result.FailedContainersCount
    Skipped = $result.SkippedCount
} | ConvertTo-Json | Set-Content (Join-Path $ResultsDirectory 'pester-summary.json')

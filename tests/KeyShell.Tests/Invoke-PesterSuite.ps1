<#
.SYNOPSIS
    Runs the module's Pester tests; build.ps1 -Task Test starts it in a child pwsh.
.DESCRIPTION
    Writes NUnit XML and a JSON summary (Passed, Failed, Skipped, and the names of the failed tests and of the
    skipped ones with why) to ResultsDirectory. The module under test is passed to the tests through
    $env:KEYSHELL_MODULE.
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
    Passed       = $result.PassedCount
    Failed       = $result.FailedCount + $result.FailedBlocksCount + $result.FailedContainersCount
    Skipped      = $result.SkippedCount
    FailedTests  = @(@($result.Failed) + @($result.FailedBlocks) | ForEach-Object { $_.ExpandedPath }) + @($result.FailedContainers | ForEach-Object { "$($_.Item)" })
    # Set-ItResult -Skipped -Because '...' leaves its reason in the test's error record.
    SkippedTests = @($result.Skipped | ForEach-Object {
            [pscustomobject]@{ Name = $_.ExpandedPath; Reason = $(if ($_.ErrorRecord) { "$($_.ErrorRecord[0].Exception.Message)" -replace '^is skipped, because ', '' } else { 'skipped' }) }
        })
} | ConvertTo-Json -Depth 4 | Set-Content (Join-Path $ResultsDirectory 'pester-summary.json')

<#
.SYNOPSIS
    The help examples in the order a reader meets them: each cmdlet's page (cmdlets by name), then
    about_KeyShell's EXAMPLES, then the PowerShell blocks of the README. Each: Command, Title, Code.
#>
$root = Join-Path $PSScriptRoot '../..'
Import-Module (Join-Path $root 'src/Help/MarkdownHelp.psm1') -Force
foreach ($name in (Get-Command -Module KeyShell -CommandType Cmdlet, Function).Name | Sort-Object) {
    $file = Join-Path $root "docs/$name.md"
    if (Test-Path $file) {
        foreach ($example in (ConvertFrom-HelpMarkdown -Markdown (Get-Content -Raw $file)).Examples) {
            [pscustomobject]@{ Command = $name; Title = $example.Title; Code = $example.Code }
        }
    }
}

# about_KeyShell's EXAMPLES: one indented block.
$about = Get-Content -Raw (Join-Path $root 'docs/about_KeyShell.md')
$block = [regex]::Match($about, '(?s)## EXAMPLES\r?\n(.*?)\r?\n## ').Groups[1].Value
$code = (($block -split '\r?\n' | Where-Object { $_ -match '^ {4}' } | ForEach-Object { $_.Substring(4) }) -join "`n").Trim()
if ($code) { [pscustomobject]@{ Command = 'about_KeyShell'; Title = 'EXAMPLES'; Code = $code } }

# The README's PowerShell blocks (its sh blocks are build and supervisor commands, tested elsewhere).
$readme = Get-Content -Raw (Join-Path $root 'README.md')
$number = 0
foreach ($match in [regex]::Matches($readme, '(?s)```powershell\r?\n(.*?)```')) {
    $number++
    [pscustomobject]@{ Command = 'README'; Title = "PowerShell block $number"; Code = $match.Groups[1].Value.Trim() }
}

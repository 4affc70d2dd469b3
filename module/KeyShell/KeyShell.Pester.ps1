# Should -BeValidKeyConversation, registered with Pester 5 and 6: with each Pester loaded when KeyShell is
# imported, and (through PesterAssertionHook) with a Pester imported later, the first time its Should is used.

# The operator: $ActualValue is a log's path (a string, a FileInfo, or a server with a LogPath), or several.
function BeValidKeyConversation {
    param($ActualValue, [string[]] $Sequences, [switch] $Negate, [string] $Because)

    $because = if ($Because) { " because $Because," } else { '' }
    $paths = @(foreach ($item in @($ActualValue)) {
            if ($item -is [System.IO.FileSystemInfo]) { $item.FullName }
            elseif ($null -ne $item -and $item.PSObject.Properties['LogPath']) { $item.LogPath }
            else { $item }
        })
    if ($paths.Count -eq 0 -or @($paths | ForEach-Object { [string]::IsNullOrEmpty($_) }) -contains $true) {
        return [pscustomobject]@{ Succeeded = $false; FailureMessage = "Expected the path of a conversation log,$because but got $(if ($null -eq $ActualValue) { '$null' } else { "'$ActualValue'" })." }
    }

    $failures = [System.Collections.Generic.List[string]]::new()
    foreach ($path in $paths) {
        $full = $ExecutionContext.SessionState.Path.GetUnresolvedProviderPathFromPSPath($path)
        if (-not (Test-Path -LiteralPath $full -PathType Leaf)) {
            $failures.Add("Expected a conversation log at '$full',$because but there is no such file.")
            continue
        }
        $check = KeyShell\Test-KeyConversation -Path $full -Sequences $Sequences -Detailed -ErrorAction Stop
        $counts = "$(Get-Count $check.Requests 'request' 'requests'), $(Get-Count $check.Replies 'reply' 'replies'), $(Get-Count $check.Faults 'fault' 'faults')"
        if ($Negate -and $check.IsValid) {
            $failures.Add("Expected the conversation log '$full' to have problems,$because but it is valid ($counts).")
        }
        elseif (-not $Negate -and -not $check.IsValid) {
            $shown = @($check.Problems | Select-Object -First 20)
            $more = if ($check.Problems.Count -gt $shown.Count) { "`n  ... and $($check.Problems.Count - $shown.Count) more" } else { '' }
            $failures.Add("Expected the conversation log '$full' to be valid,$because but it has $(Get-Count $check.Problems.Count 'problem' 'problems') ($counts):`n  " + ($shown -join "`n  ") + $more)
        }
    }
    [pscustomobject]@{ Succeeded = $failures.Count -eq 0; FailureMessage = $failures -join "`n" }
}

function Get-Count([long] $Count, [string] $One, [string] $Many) { "$Count $(if ($Count -eq 1) { $One } else { $Many })" }

# Registers the operator with one Pester module; returns $true when it is there (added now or before).
function Register-KeyConversationAssertion {
    param([Parameter(Mandatory)] [psmoduleinfo] $Pester)
    if ($Pester.Version.Major -lt 5 -or -not $Pester.ExportedCommands.ContainsKey('Add-ShouldOperator')) {
        Write-Verbose "KeyShell: Should -BeValidKeyConversation needs Pester 5 or 6; Pester $($Pester.Version) is loaded."
        return $false
    }
    try {
        & $Pester.ExportedCommands['Add-ShouldOperator'] -Name BeValidKeyConversation -Test ${function:BeValidKeyConversation}
        $true
    }
    catch {
        # Already registered by another KeyShell (a different version's text), or no room for more operators.
        Write-Verbose "KeyShell: Should -BeValidKeyConversation was not registered with Pester $($Pester.Version): $($_.Exception.Message)"
        $false
    }
}

$script:PesterHook = [KeyShell.PesterAssertionHook]::Install($ExecutionContext.InvokeCommand, { param($Pester) $null = Register-KeyConversationAssertion -Pester $Pester })
foreach ($pester in @(Get-Module -Name Pester)) {
    $null = Register-KeyConversationAssertion -Pester $pester
    $script:PesterHook.Registered($pester)
}
$ExecutionContext.SessionState.Module.OnRemove = { $script:PesterHook.Remove() }

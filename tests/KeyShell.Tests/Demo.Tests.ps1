BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    $script:Demo = Join-Path $PSScriptRoot '../../docs/examples/Demo.ps1'
    function Invoke-Demo {
        $folder = New-TestDirectory
        Invoke-ChildPwsh -Arguments '-NoProfile', '-NonInteractive', '-File', $Demo, '-ModuleManifest', $env:KEYSHELL_MODULE, '-WorkingDirectory', $folder
    }
}

Describe 'The demo (build.ps1 -Task Demo)' {
    It 'takes another port when 8080 is taken, says which, and passes' {
        # Held here, or by another process of the machine: taken either way.
        $holder = [System.Net.Sockets.TcpListener]::new([System.Net.IPAddress]::Loopback, 8080)
        try { $holder.Start() } catch { $holder = $null }
        try {
            $run = Invoke-Demo
            $run.ExitCode | Should -Be 0 -Because ($run.Output -join "`n")
            $taken = $run.Output | Where-Object { $_ -match '^Port 8080 is taken; the demo uses port (\d+)\.$' }
            $taken | Should -Not -BeNullOrEmpty -Because ($run.Output -join "`n")
            $port = [regex]::Match($taken, '(\d+)\.$').Groups[1].Value
            $port | Should -Not -Be '8080'
            $run.Output | Should -Contain "Server waiting for connexion on the port $port..."
            $run.Output | Where-Object { $_ -like 'Demo passed:*' } | Should -Not -BeNullOrEmpty
        }
        finally { if ($holder) { $holder.Stop() } }
    }

    It 'uses 8080 when it is free' {
        $probe = [System.Net.Sockets.TcpListener]::new([System.Net.IPAddress]::Loopback, 8080)
        try { $probe.Start(); $probe.Stop() } catch { Set-ItResult -Skipped -Because "another process of this machine holds port 8080 ($($_.Exception.Message))"; return }
        $run = Invoke-Demo
        $run.ExitCode | Should -Be 0 -Because ($run.Output -join "`n")
        if ($run.Output -match '^Port 8080 is taken') { Set-ItResult -Skipped -Because 'another process took port 8080 while the demo started'; return }
        $run.Output | Should -Contain 'Server waiting for connexion on the port 8080...'
        $run.Output | Where-Object { $_ -like 'Demo passed:*' } | Should -Not -BeNullOrEmpty
    }
}

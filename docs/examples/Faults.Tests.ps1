# A Pester test file as a user would write one to see what a client does when the server misbehaves: a
# server on a port the system picks, its log in $TestDrive, faults aimed at one client only, the log checked.
# Run it with Pester 5 or 6:  Invoke-Pester ./Faults.Tests.ps1  (KeyShell installed: build.ps1 -Task Install)

BeforeAll {
    Import-Module KeyShell
}

Describe 'A client against a server that fails on purpose' {
    It 'loses only the victim''s connection, and the log says so' {
        $log = Join-Path $TestDrive 'reset.log'
        $reset = New-KeyFault -Type Reset -ClientId 'victim' -Key 2
        $replies = Use-KeyServer -Port 0 -LogPath $log -Fault $reset {
            param($Server)
            Invoke-KeyClient -Sequences 'victim 1 2 3', 'bystander 1 2 3' -Port $Server.Port -ErrorVariable failures -ErrorAction SilentlyContinue
            $failures.FullyQualifiedErrorId | Should -BeLike 'ConnectionLost,*'
        }

        ($replies | Where-Object ClientId -EQ 'bystander').Value | Should -Be 45, 78, 23
        ($replies | Where-Object ClientId -EQ 'victim').Value | Should -Be 45
        Get-Content $log | Should -Contain 'SYSTEM: Fault reset (victim 2)'
        $log | Should -BeValidKeyConversation
    }

    It 'gets every reply through a slow server, in order' {
        $log = Join-Path $TestDrive 'delay.log'
        $delay = New-KeyFault -Type Delay -DelayMilliseconds 50 -ClientId 'victim'
        $replies = Use-KeyServer -Port 0 -LogPath $log -Fault $delay {
            param($Server)
            Invoke-KeyClient -Sequences 'victim 4 5 6' -Port $Server.Port -Connection Persistent
        }

        $replies.Value | Should -Be 56, 89, 34
        $log | Should -BeValidKeyConversation -Sequences 'victim 4 5 6'
    }
}

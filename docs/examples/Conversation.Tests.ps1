# A Pester test file as a user would write one: a server on a port the system picks, its log in $TestDrive,
# the log checked with Should -BeValidKeyConversation, a recording replayed and compared.
# Run it with Pester 5 or 6:  Invoke-Pester ./Conversation.Tests.ps1  (KeyShell installed: build.ps1 -Task Install)

BeforeAll {
    Import-Module KeyShell
    $script:Sequences = '1 1 2 3', '2 4 5 6', '3 7 8 9'
}

Describe 'The seed''s session' {
    It 'answers every client, each in the order it asked' {
        $log = Join-Path $TestDrive 'session.log'
        $replies = Use-KeyServer -Port 0 -LogPath $log {
            param($Server)
            Invoke-KeyClient -Sequences $Sequences -Port $Server.Port -Connection PerMessage
        }

        $replies.Count | Should -Be 9
        ($replies | Where-Object ClientId -EQ '3').Value | Should -Be 67, 90, 10
        $log | Should -BeValidKeyConversation -Sequences $Sequences
    }

    It 'gets the same replies when the recording is replayed' {
        $recorded = Join-Path $TestDrive 'recorded.log'
        $replayed = Join-Path $TestDrive 'replayed.log'
        Use-KeyServer -Port 0 -LogPath $recorded { param($Server) $null = Invoke-KeyClient -Sequences $Sequences -Port $Server.Port }
        $replay = Get-KeyConversation -Path $recorded | ConvertTo-KeySequence
        Use-KeyServer -Port 0 -LogPath $replayed { param($Server) $null = Invoke-KeyClient -Sequences $replay -Port $Server.Port -Connection Persistent }

        Compare-KeyConversation -ReferencePath $recorded -DifferencePath $replayed | Should -BeNullOrEmpty
        $replayed | Should -BeValidKeyConversation -Sequences $Sequences
    }

    It 'sees a reply that changed' {
        $recorded = Join-Path $TestDrive 'before.log'
        $changed = Join-Path $TestDrive 'after.log'
        Use-KeyServer -Port 0 -LogPath $recorded { param($Server) $null = Invoke-KeyClient -Sequences '1 1 2 3' -Port $Server.Port }
        Use-KeyServer -Port 0 -LogPath $changed -KeyMap @{ '1' = '45'; '2' = 'seventy-eight'; '3' = '23' } {
            param($Server) $null = Invoke-KeyClient -Sequences '1 1 2 3' -Port $Server.Port
        }

        $difference = Compare-KeyConversation -ReferencePath $recorded -DifferencePath $changed
        $difference.Request | Should -Be 2
        $difference.DifferenceReply | Should -Be 'Response for the key 2 : seventy-eight'
    }
}

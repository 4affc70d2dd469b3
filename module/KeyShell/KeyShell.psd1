@{
    RootModule           = 'KeyShell.psm1'
    # Stamped by build.ps1 from <Version> in Directory.Build.props, the one place the version lives.
    ModuleVersion        = '0.0.0'
    GUID                 = '5b0e3f4a-8c2d-4d6b-9a51-2f7c1e9d3a60'
    Author               = 'KeyShell contributors'
    CompanyName          = 'KeyShell'
    Copyright            = '(c) KeyShell contributors. MIT License.'
    Description          = 'A concurrent TCP key-lookup server and client for PowerShell: start a server in the background, drive it with parallel client sequences, and check the conversation log.'
    PowerShellVersion    = '5.1'
    CompatiblePSEditions = @('Desktop', 'Core')
    FormatsToProcess     = @('KeyShell.Format.ps1xml')
    TypesToProcess       = @('KeyShell.Types.ps1xml')
    CmdletsToExport      = @(
        'Start-KeyServer'
        'Stop-KeyServer'
        'Get-KeyServer'
        'Test-KeyServer'
        'Invoke-KeyClient'
        'Measure-KeyServer'
        'Merge-KeyMeasurement'
        'Export-KeyMeasurement'
        'Set-KeyServer'
        'Get-KeyConversation'
        'Test-KeyConversation'
        'ConvertTo-KeySequence'
        'Compare-KeyConversation'
        'New-KeyFault'
    )
    FunctionsToExport    = @('Use-KeyServer')
    VariablesToExport    = @()
    AliasesToExport      = @()
    PrivateData          = @{
        PSData = @{
            Tags         = @('tcp', 'server', 'client', 'socket', 'testing', 'PSEdition_Core', 'PSEdition_Desktop')
            LicenseUri   = 'https://opensource.org/licenses/MIT'
            ReleaseNotes = 'See CHANGELOG.md.'
        }
    }
}

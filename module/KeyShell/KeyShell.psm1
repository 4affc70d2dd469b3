# Loads the binary module with its dependencies isolated (see src/KeyShell/DependencyResolver.cs).
# PowerShell reflects over a binary module's cmdlet types as it imports it, and those types name the
# engine's, which live in Dependencies/. So the resolver must be in place first: load KeyShell.dll,
# run its module initializer (which installs the resolver), then import it.
$assembly = [System.Reflection.Assembly]::LoadFrom((Join-Path $PSScriptRoot 'KeyShell.dll'))
[System.Runtime.CompilerServices.RuntimeHelpers]::RunModuleConstructor($assembly.ManifestModule.ModuleHandle)
Import-Module -Name $assembly.Location

# The script half of the module: Use-KeyServer, and Should -BeValidKeyConversation for Pester.
. (Join-Path $PSScriptRoot 'Use-KeyServer.ps1')
. (Join-Path $PSScriptRoot 'KeyShell.Pester.ps1')

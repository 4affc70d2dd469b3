namespace KeyShell;

/// <summary>What must happen before anything else in KeyShell.dll runs (KeyShell.psm1 triggers it).</summary>
internal static class ModuleStartup
{
#pragma warning disable CA2255 // A module initializer is the only hook that runs before PowerShell reflects over the cmdlets' parameter types.
    [System.Runtime.CompilerServices.ModuleInitializer]
#pragma warning restore CA2255
    internal static void Initialize() => DependencyResolver.Install();
}

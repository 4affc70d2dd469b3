using System;
using System.Management.Automation;

namespace KeyShell;

/// <summary>Stops the module's servers when the module is removed or the process is asked to exit,
/// so no listener outlives its session and every log is flushed.</summary>
public sealed class ModuleLifetime : IModuleAssemblyInitializer, IModuleAssemblyCleanup
{
    private static bool _hooked;

    public void OnImport()
    {
        if (!_hooked)
        {
            _hooked = true;
            AppDomain.CurrentDomain.ProcessExit += (_, _) => ServerRegistry.StopAll();
        }
    }

    public void OnRemove(PSModuleInfo psModuleInfo) => ServerRegistry.StopAll();
}

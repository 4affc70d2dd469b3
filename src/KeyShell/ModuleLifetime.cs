using System;
using System.Management.Automation;
using KeyShell.Engine.Server;

namespace KeyShell;

/// <summary>Stops the module's servers when the module is removed or the process is asked to stop
/// (SIGTERM, exit), so no listener outlives its session and every log is flushed.</summary>
public sealed class ModuleLifetime : IModuleAssemblyInitializer, IModuleAssemblyCleanup
{
    private static readonly object Gate = new();
    private static IDisposable? _shutdown;

    public void OnImport()
    {
        lock (Gate)
        {
            _shutdown ??= ProcessShutdown.Register(ServerRegistry.StopAll);
        }
    }

    public void OnRemove(PSModuleInfo psModuleInfo) => ServerRegistry.StopAll();
}

using System;

namespace KeyShell.Engine.Server;

/// <summary>
/// Runs an action when the process is asked to stop, before it ends: so a server killed politely
/// (SIGTERM, a service stop) still closes its connections and flushes its log. Hosts such as pwsh end
/// on SIGTERM without raising ProcessExit, so on .NET 8 the signal itself is handled
/// (ProcessShutdown.NetCore.cs); the default action (ending the process) follows once the action has run.
/// </summary>
public static partial class ProcessShutdown
{
    public static IDisposable Register(Action action)
    {
        if (action is null)
        {
            throw new ArgumentNullException(nameof(action));
        }

        var once = 0;
        void RunOnce()
        {
            if (System.Threading.Interlocked.Exchange(ref once, 1) == 0)
            {
                action();
            }
        }

        EventHandler onExit = (_, _) => RunOnce();
        AppDomain.CurrentDomain.ProcessExit += onExit;
        var signal = RegisterTermination(RunOnce);
        return new Registration(() =>
        {
            signal?.Dispose();
            AppDomain.CurrentDomain.ProcessExit -= onExit;
        });
    }

    private sealed class Registration : IDisposable
    {
        private Action? _dispose;

        public Registration(Action dispose) => _dispose = dispose;

        public void Dispose() => System.Threading.Interlocked.Exchange(ref _dispose, null)?.Invoke();
    }
}

using System;
using System.IO;
using System.Management.Automation.Host;

namespace KeyShell;

/// <summary>
/// In an interactive console, takes Ctrl+C as a key for the length of a foreground run, so that the run can
/// end and still return its result: once PowerShell stops a pipeline, nothing can be written to it. Elsewhere
/// (redirected input, jobs, remoting, a host that is not the console) Ctrl+C stops the pipeline as usual.
/// </summary>
internal sealed class ConsoleBreak : IDisposable
{
    private readonly bool _previous;

    private ConsoleBreak(bool previous) => _previous = previous;

    /// <summary>Takes Ctrl+C over in an interactive console host; null where it cannot be (then nothing changes).</summary>
    public static ConsoleBreak? TryTake(PSHost host)
    {
        if (host.Name != "ConsoleHost" || Console.IsInputRedirected || !Environment.UserInteractive)
        {
            return null;
        }

        try
        {
            var previous = Console.TreatControlCAsInput;
            Console.TreatControlCAsInput = true;
            return new ConsoleBreak(previous);
        }
        catch (Exception e) when (e is IOException || e is InvalidOperationException || e is PlatformNotSupportedException)
        {
            return null;
        }
    }

    /// <summary>True when Ctrl+C was pressed since the last call; other keys pressed meanwhile are dropped.</summary>
    public bool Pressed()
    {
        try
        {
            while (Console.KeyAvailable)
            {
                var key = Console.ReadKey(intercept: true);
                if (key.KeyChar == '\u0003' || (key.Key == ConsoleKey.C && (key.Modifiers & ConsoleModifiers.Control) != 0))
                {
                    return true;
                }
            }
        }
        catch (Exception e) when (e is IOException || e is InvalidOperationException)
        {
            // The console went away: nothing to read.
        }

        return false;
    }

    public void Dispose()
    {
        try
        {
            Console.TreatControlCAsInput = _previous;
        }
        catch (Exception e) when (e is IOException || e is InvalidOperationException)
        {
            // The console went away: nothing to restore.
        }
    }
}

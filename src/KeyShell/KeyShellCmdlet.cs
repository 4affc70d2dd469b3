using System;
using System.Management.Automation;
using System.Threading;

namespace KeyShell;

/// <summary>
/// What every KeyShell cmdlet shares: one CancellationTokenSource, cancelled by Ctrl+C (StopProcessing)
/// and passed to every engine call; paths resolved against the PowerShell location; host lines.
/// </summary>
public abstract class KeyShellCmdlet : PSCmdlet, IDisposable
{
    private readonly CancellationTokenSource _cancellation = new();

    /// <summary>Cancelled when the user presses Ctrl+C or the pipeline is stopped.</summary>
    protected CancellationToken Cancellation => _cancellation.Token;

    public void Dispose() => _cancellation.Dispose();

    protected override void StopProcessing() => _cancellation.Cancel();

    /// <summary>Resolves a path as PowerShell users expect: relative to $PWD, not the process directory.</summary>
    protected string ResolvePath(string path) => SessionState.Path.GetUnresolvedProviderPathFromPSPath(path);

    /// <summary>The error for a conversation log that does not exist (<paramref name="path"/> as the user gave it).</summary>
    protected static ErrorRecord LogNotFound(string fullPath, object path) =>
        new(new System.IO.FileNotFoundException($"The log '{fullPath}' does not exist.", fullPath), ErrorIds.LogNotFound, ErrorCategory.ObjectNotFound, path);

    /// <summary>Writes a console line as Write-Host does: shown in the host, capturable as information (6>).</summary>
    protected void WriteHostLine(string text) =>
        WriteInformation(new HostInformationMessage { Message = text }, new[] { "PSHOST" });

    /// <summary>
    /// Writes what a server reported since it was last asked (rejected, idle or stalled connections, log
    /// failures, internal errors): warnings to the warning stream, the rest to the verbose stream. A server
    /// runs in the background, so its news reaches the user with their next command that touches it.
    /// </summary>
    protected void WriteDiagnostics(Engine.Server.KeyServer server)
    {
        if (server.DiagnosticQueue is { } queue)
        {
            while (queue.TryTake(out var diagnostic))
            {
                WriteDiagnostic(server, diagnostic);
            }
        }

        // What a -Handler wrote besides its replies (errors beside output, warnings, Write-Host, verbose).
        if (server.Handler is ScriptBlockHandler handler)
        {
            while (handler.Diagnostics.TryTake(out var diagnostic))
            {
                WriteDiagnostic(server, diagnostic);
            }
        }
    }

    /// <summary>A warning that must reach the user even once Ctrl+C has stopped the pipeline (where the
    /// warning stream no longer takes anything): then it goes to the host directly.</summary>
    protected void WriteWarningEvenWhenStopping(string text)
    {
        if (!Cancellation.IsCancellationRequested)
        {
            WriteWarning(text);
            return;
        }

        try
        {
            Host.UI.WriteWarningLine(text);
        }
        catch (Exception e) when (e is PipelineStoppedException || e is System.Management.Automation.Host.HostException || e is NotImplementedException)
        {
            // A host with no user interface: there is no one to tell.
        }
    }

    private void WriteDiagnostic(Engine.Server.KeyServer server, Engine.Logging.Diagnostic diagnostic)
    {
        var text = $"KeyServer {server.Address}:{server.Port}: {diagnostic.Message}";
        if (diagnostic.IsWarning)
        {
            WriteWarning(text);
        }
        else
        {
            WriteVerbose(text);
        }
    }

    protected bool IsVerbose =>
        MyInvocation.BoundParameters.TryGetValue("Verbose", out var verbose)
            ? ((SwitchParameter)verbose).IsPresent
            : GetVariableValue("VerbosePreference") is ActionPreference preference && preference != ActionPreference.SilentlyContinue;
}

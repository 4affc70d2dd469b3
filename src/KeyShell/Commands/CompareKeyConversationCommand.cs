using System;
using System.Collections.Generic;
using System.Management.Automation;
using KeyShell.Engine.Logging;

namespace KeyShell.Commands;

/// <summary>
/// Compares two conversation logs per client and request: lists the requests whose key or outcome (reply, or
/// the fault that took it) differ, with both sides; nothing when the conversations are the same.
/// </summary>
[Cmdlet(VerbsData.Compare, "KeyConversation")]
[OutputType(typeof(ConversationDifference))]
public sealed class CompareKeyConversationCommand : KeyShellCmdlet
{
    [Parameter(Mandatory = true, Position = 0)]
    [ValidateNotNullOrEmpty]
    public string ReferencePath { get; set; } = string.Empty;

    [Parameter(Mandatory = true, Position = 1)]
    [ValidateNotNullOrEmpty]
    public string DifferencePath { get; set; } = string.Empty;

    /// <summary>Lists the requests that are the same too (SideIndicator ==).</summary>
    [Parameter]
    public SwitchParameter IncludeEqual { get; set; }

    protected override void EndProcessing()
    {
        var reference = Existing(ReferencePath);
        var difference = Existing(DifferencePath);
        try
        {
            foreach (var compared in ConversationComparison.Compare(Lines(reference), Lines(difference), IncludeEqual))
            {
                WriteObject(compared);
            }
        }
        catch (OperationCanceledException)
        {
            // Ctrl+C while reading a large log: the pipeline is stopping.
        }
    }

    private string Existing(string path)
    {
        var full = ResolvePath(path);
        if (!System.IO.File.Exists(full))
        {
            ThrowTerminatingError(LogNotFound(full, path));
        }

        return full;
    }

    /// <summary>The log's lines, stopping when the user presses Ctrl+C.</summary>
    private IEnumerable<(int LineNumber, string Line, ConversationEntry? Entry)> Lines(string path)
    {
        foreach (var line in ConversationCheck.Read(path))
        {
            Cancellation.ThrowIfCancellationRequested();
            yield return line;
        }
    }
}

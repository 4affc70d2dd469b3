using System.Collections.Generic;
using System.Management.Automation;
using KeyShell.Engine.Client;
using KeyShell.Engine.Logging;

namespace KeyShell.Commands;

/// <summary>
/// Checks a conversation log: each client's replies in the order of its requests (FIFO), each reply for
/// the key asked, every request answered or taken by a fault; with -Sequences, each client's keys exactly as sent.
/// </summary>
[Cmdlet(VerbsDiagnostic.Test, "KeyConversation")]
[OutputType(typeof(bool), typeof(ConversationCheck))]
public sealed class TestKeyConversationCommand : KeyShellCmdlet
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
    [Alias("LogPath", "FullName")]
    [ValidateNotNullOrEmpty]
    public string Path { get; set; } = string.Empty;

    /// <summary>The sequences that were sent ('1 1 2 3'): each client's keys must appear in this order.</summary>
    [Parameter(Position = 1)]
    public string[]? Sequences { get; set; }

    /// <summary>Returns the check (counts and problems) instead of $true/$false.</summary>
    [Parameter]
    public SwitchParameter Detailed { get; set; }

    protected override void ProcessRecord()
    {
        var full = ResolvePath(Path);
        if (!System.IO.File.Exists(full))
        {
            ThrowTerminatingError(LogNotFound(full, Path));
        }

        Dictionary<string, IReadOnlyList<string>>? expected = null;
        if (Sequences is not null)
        {
            expected = new Dictionary<string, IReadOnlyList<string>>();
            foreach (var text in Sequences)
            {
                try
                {
                    var sequence = ClientSequence.Parse(text);
                    expected[sequence.ClientId] = sequence.Keys;
                }
                catch (System.FormatException e)
                {
                    ThrowTerminatingError(new ErrorRecord(e, ErrorIds.InvalidSequence, ErrorCategory.InvalidArgument, text));
                }
            }
        }

        var check = ConversationCheck.Verify(full, expected);
        if (Detailed)
        {
            WriteObject(check);
            return;
        }

        foreach (var problem in check.Problems)
        {
            WriteVerbose(problem);
        }

        foreach (var faulted in check.FaultedRequests)
        {
            WriteVerbose(faulted.ToString());
        }

        WriteObject(check.IsValid);
    }
}

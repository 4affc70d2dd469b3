using System.Collections.Generic;
using System.Management.Automation;
using KeyShell.Engine.Client;
using KeyShell.Engine.Logging;
using KeyShell.Engine.Server;

namespace KeyShell.Commands;

/// <summary>
/// Checks a conversation log: each client's replies in the order of its requests (FIFO), each reply for
/// the key asked, every request answered or taken by a fault; with -Sequences, each client's keys exactly as sent.
/// </summary>
// The server set is the default: a piped KeyServer binds to it before its (maybe empty) LogPath binds to -Path.
[Cmdlet(VerbsDiagnostic.Test, "KeyConversation", DefaultParameterSetName = ByServer)]
[OutputType(typeof(bool), typeof(ConversationCheck))]
public sealed class TestKeyConversationCommand : KeyShellCmdlet
{
    private const string ByPath = "Path";
    private const string ByServer = "InputObject";

    [Parameter(ParameterSetName = ByPath, Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
    [Alias("LogPath", "FullName")]
    [AllowNull]
    [AllowEmptyString]
    public string Path { get; set; } = string.Empty;

    /// <summary>A server of the session (Get-KeyServer): its log is checked; one started with -NoLog is an error.</summary>
    [Parameter(ParameterSetName = ByServer, Mandatory = true, ValueFromPipeline = true)]
    [ValidateNotNull]
    public KeyServer? InputObject { get; set; }

    /// <summary>The sequences that were sent ('1 1 2 3'): each client's keys must appear in this order.</summary>
    [Parameter(Position = 1)]
    public string[]? Sequences { get; set; }

    /// <summary>Returns the check (counts and problems) instead of $true/$false.</summary>
    [Parameter]
    public SwitchParameter Detailed { get; set; }

    protected override void ProcessRecord()
    {
        if (InputObject is { LogPath: null })
        {
            ThrowTerminatingError(ErrorIds.NoLog(InputObject));
        }

        if (InputObject is null && string.IsNullOrEmpty(Path))
        {
            // A deserialized -NoLog server (from a job or remoting) binds its empty LogPath here.
            ThrowTerminatingError(new ErrorRecord(
                new System.ArgumentException("The log path is empty: a KeyServer started with -NoLog keeps no conversation log, so it has none to check."),
                ErrorIds.NoConversationLog,
                ErrorCategory.InvalidArgument,
                Path));
        }

        var full = InputObject?.LogPath ?? ResolvePath(Path);
        if (!System.IO.File.Exists(full))
        {
            ThrowTerminatingError(LogNotFound(full, InputObject?.LogPath ?? Path));
        }

        Dictionary<string, IReadOnlyList<string>>? expected = null;
        if (Sequences is not null)
        {
            var sequences = new List<ClientSequence>();
            foreach (var text in Sequences)
            {
                try
                {
                    sequences.Add(ClientSequence.Parse(text));
                }
                catch (System.FormatException e)
                {
                    ThrowTerminatingError(new ErrorRecord(e, ErrorIds.InvalidSequence, ErrorCategory.InvalidArgument, text));
                }
            }

            try
            {
                // Two sequences of one client have no order to check against.
                DuplicateClientIdException.ThrowIfAny(sequences);
            }
            catch (DuplicateClientIdException e)
            {
                ThrowTerminatingError(ErrorIds.DuplicateClient(e));
            }

            expected = new Dictionary<string, IReadOnlyList<string>>();
            foreach (var sequence in sequences)
            {
                expected[sequence.ClientId] = sequence.Keys;
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

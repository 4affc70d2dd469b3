using System.Management.Automation;
using KeyShell.Engine.Logging;

namespace KeyShell.Commands;

/// <summary>
/// Turns a conversation back into traffic: Get-KeyConversation's entries in, one sequence per client out
/// ('3 7 8 9', its keys in the order of its requests), as Invoke-KeyClient -Sequences and Measure-KeyServer take them.
/// </summary>
[Cmdlet(VerbsData.ConvertTo, "KeySequence")]
[OutputType(typeof(string))]
public sealed class ConvertToKeySequenceCommand : KeyShellCmdlet
{
    private readonly ConversationSequences _sequences = new();

    /// <summary>Entries of a log (Get-KeyConversation), live or deserialized; only Client lines count.</summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true)]
    [ValidateNotNull]
    public PSObject[] InputObject { get; set; } = System.Array.Empty<PSObject>();

    protected override void ProcessRecord()
    {
        foreach (var input in InputObject)
        {
            var taken = input.BaseObject is ConversationEntry entry
                ? _sequences.Add(entry)
                : _sequences.Add(Text(input, "Source"), Text(input, "ClientId"), Text(input, "Key"));
            if (!taken)
            {
                WriteWarning($"Line {Text(input, "LineNumber")} ('{Text(input, "Line")}') is a request with no valid client id: no sequence can send it again, so it is left out.");
            }
        }
    }

    protected override void EndProcessing()
    {
        foreach (var sequence in _sequences.ToStrings())
        {
            WriteObject(sequence);
        }
    }

    private static string? Text(PSObject input, string name) => input.Properties[name]?.Value?.ToString();
}

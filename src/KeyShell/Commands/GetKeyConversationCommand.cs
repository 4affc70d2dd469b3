using System.Management.Automation;
using KeyShell.Engine.Logging;

namespace KeyShell.Commands;

/// <summary>Reads a conversation log into objects (Time, Source, ClientId, Key, Reply); fault lines as ConversationFault.</summary>
[Cmdlet(VerbsCommon.Get, "KeyConversation")]
[OutputType(typeof(ConversationEntry), typeof(ConversationFault))]
public sealed class GetKeyConversationCommand : KeyShellCmdlet
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [Alias("LogPath", "FullName")]
    [ValidateNotNullOrEmpty]
    public string[] Path { get; set; } = System.Array.Empty<string>();

    protected override void ProcessRecord()
    {
        foreach (var path in Path)
        {
            var full = ResolvePath(path);
            if (!System.IO.File.Exists(full))
            {
                WriteError(LogNotFound(full, path));
                continue;
            }

            foreach (var (number, line, entry) in ConversationCheck.Read(full))
            {
                if (entry is null)
                {
                    if (line.Length > 0)
                    {
                        WriteWarning($"{full}:{number} is not a conversation line: {line}");
                    }

                    continue;
                }

                WriteObject(entry);
            }
        }
    }
}

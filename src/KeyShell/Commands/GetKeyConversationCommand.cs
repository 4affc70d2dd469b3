using System.Management.Automation;
using KeyShell.Engine.Logging;
using KeyShell.Engine.Server;

namespace KeyShell.Commands;

/// <summary>Reads a conversation log into objects (Time, Source, ClientId, Key, Reply); fault lines as ConversationFault.</summary>
// The server set is the default: a piped KeyServer binds to it before its (maybe empty) LogPath binds to -Path.
[Cmdlet(VerbsCommon.Get, "KeyConversation", DefaultParameterSetName = ByServer)]
[OutputType(typeof(ConversationEntry), typeof(ConversationFault))]
public sealed class GetKeyConversationCommand : KeyShellCmdlet
{
    private const string ByPath = "Path";
    private const string ByServer = "InputObject";

    [Parameter(ParameterSetName = ByPath, Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [Alias("LogPath", "FullName")]
    [AllowNull]
    [AllowEmptyString]
    public string[] Path { get; set; } = System.Array.Empty<string>();

    /// <summary>Servers of the session (Get-KeyServer): their logs are read; one started with -NoLog is an error.</summary>
    [Parameter(ParameterSetName = ByServer, Mandatory = true, ValueFromPipeline = true)]
    [ValidateNotNull]
    public KeyServer[] InputObject { get; set; } = System.Array.Empty<KeyServer>();

    protected override void ProcessRecord()
    {
        if (ParameterSetName == ByServer)
        {
            foreach (var server in InputObject)
            {
                if (server.LogPath is null)
                {
                    WriteError(ErrorIds.NoLog(server));
                    continue;
                }

                Read(server.LogPath, server.LogPath);
            }

            return;
        }

        foreach (var path in Path ?? new string[] { null! })
        {
            if (string.IsNullOrEmpty(path))
            {
                // A deserialized -NoLog server (from a job or remoting) binds its empty LogPath here.
                WriteError(new ErrorRecord(
                    new System.ArgumentException("The log path is empty: a KeyServer started with -NoLog keeps no conversation log, so it has none to read."),
                    ErrorIds.NoConversationLog,
                    ErrorCategory.InvalidArgument,
                    path));
                continue;
            }

            Read(ResolvePath(path), path);
        }
    }

    private void Read(string full, object given)
    {
        if (!System.IO.File.Exists(full))
        {
            WriteError(LogNotFound(full, given));
            return;
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

using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using System.Management.Automation;
using System.Security.Cryptography.X509Certificates;
using System.Threading;
using System.Threading.Tasks;
using KeyShell.Engine.Client;
using KeyShell.Engine.Logging;
using KeyShell.Engine.Security;
using KeyShell.Engine.Server;

namespace KeyShell.Commands;

/// <summary>
/// Runs client sequences against a key server, all in parallel, each key strictly after the previous
/// one's reply. Replies are written as they arrive; a sequence cut short is an error record.
/// </summary>
[Cmdlet(VerbsLifecycle.Invoke, "KeyClient")]
[OutputType(typeof(KeyReply))]
public sealed class InvokeKeyClientCommand : KeyShellCmdlet
{
    private const int ProgressThreshold = 500; // requests; smaller runs finish before a bar would help

    private readonly List<ClientSequence> _sequences = new();

    /// <summary>'&lt;client&gt; &lt;key&gt; [&lt;key&gt; ...]', as the seed's client: '1 1 2 3'.</summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true)]
    [ValidateNotNull]
    public string[] Sequences { get; set; } = Array.Empty<string>();

    [Parameter]
    [Alias("Cn")]
    [ArgumentCompleter(typeof(ComputerNameCompleter))]
    [ValidateNotNullOrEmpty]
    public string ComputerName { get; set; } = "127.0.0.1";

    [Parameter]
    [ArgumentCompleter(typeof(ClientPortCompleter))]
    [ValidateRange(1, 65535)]
    public int Port { get; set; } = 8080;

    [Parameter]
    public ConnectionMode Connection { get; set; } = ConnectionMode.PerMessage;

    [Parameter]
    public Framing Framing { get; set; } = Framing.Line;

    /// <summary>A client-side conversation log; none by default.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? LogPath { get; set; }

    [Parameter]
    [ValidateRange(1, 3600)]
    public int TimeoutSec { get; set; } = 10;

    /// <summary>Speaks TLS (1.2 or 1.3) to the server.</summary>
    [Parameter]
    public SwitchParameter UseTls { get; set; }

    /// <summary>With -UseTls: accepts any server certificate (self-signed, another name, expired). For test servers only.</summary>
    [Parameter]
    public SwitchParameter SkipCertificateCheck { get; set; }

    /// <summary>With -UseTls: the client certificate (with its private key) for a server that requires one.</summary>
    [Parameter]
    [ValidateNotNull]
    public X509Certificate2? Certificate { get; set; }

    /// <summary>Takes any one-line reply that does not start with 'Error:' as an answer (servers whose handlers reply in their own form).</summary>
    [Parameter]
    public SwitchParameter SkipReplyCheck { get; set; }

    protected override void BeginProcessing() => ClientTlsCheck.Run(this, UseTls, SkipCertificateCheck, Certificate);

    protected override void ProcessRecord()
    {
        foreach (var text in Sequences)
        {
            try
            {
                _sequences.Add(ClientSequence.Parse(text));
            }
            catch (FormatException e)
            {
                WriteError(new ErrorRecord(e, ErrorIds.InvalidSequence, ErrorCategory.InvalidArgument, text));
            }
        }
    }

    protected override void EndProcessing()
    {
        if (_sequences.Count == 0)
        {
            return;
        }

        try
        {
            DuplicateClientIdException.ThrowIfAny(_sequences); // the engine refuses them too, once the run has begun
        }
        catch (DuplicateClientIdException e)
        {
            ThrowTerminatingError(ErrorIds.DuplicateClient(e));
        }

        var options = new KeyClientOptions
        {
            ComputerName = ComputerName,
            Port = Port,
            Connection = Connection,
            Framing = Framing,
            Timeout = TimeSpan.FromSeconds(TimeoutSec),
            LogPath = LogPath is null ? null : ResolvePath(LogPath),
            UseTls = UseTls,
            SkipCertificateCheck = SkipCertificateCheck,
            ClientCertificate = TlsParameters.ClientCertificate(Certificate),
            SkipReplyCheck = SkipReplyCheck,
        };
        using var observer = new QueueObserver(IsVerbose);
        var run = Task.Run(() => KeyClient.RunAsync(_sequences, options, observer, Cancellation));
        var total = _sequences.Sum(s => s.Keys.Count);
        var progress = total >= ProgressThreshold ? new ProgressRecord(1, "Invoke-KeyClient", $"{_sequences.Count} sequences, {total} keys to {ComputerName}:{Port}") : null;
        var lastProgress = Stopwatch.StartNew();
        long answered = 0;
        try
        {
            // Worker threads only queue; this, the pipeline thread, writes.
            while (!(run.IsCompleted && observer.Items.IsEmpty))
            {
                if (!observer.Items.TryTake(out var item, 50))
                {
                    continue;
                }

                switch (item)
                {
                    case KeyReply reply:
                        answered++;
                        if (observer.Verbose)
                        {
                            WriteVerbose($"Serveur : {reply.Reply}");
                        }

                        WriteObject(reply);
                        break;
                    case KeyClientFailure failure:
                        WriteError(ErrorIds.Record(new KeyClientException(failure), ErrorIds.For(failure.Kind), failure.Sequence.ToString()));
                        break;
                    case string sending:
                        WriteVerbose(sending);
                        break;
                }

                if (progress is not null && lastProgress.ElapsedMilliseconds >= 250)
                {
                    lastProgress.Restart();
                    progress.PercentComplete = (int)(answered * 100 / total);
                    progress.StatusDescription = $"{answered} of {total} replies";
                    WriteProgress(progress);
                }
            }

            run.GetAwaiter().GetResult(); // surfaces a failure to start (bad host, unwritable log)
        }
        catch (TlsCertificateUntrustedException e)
        {
            ThrowTerminatingError(TlsParameters.Record(e, $"{ComputerName}:{Port}"));
        }
        catch (DuplicateClientIdException e)
        {
            ThrowTerminatingError(ErrorIds.DuplicateClient(e));
        }
        catch (Exception e) when (e is System.Net.Sockets.SocketException || e is ArgumentException)
        {
            ThrowTerminatingError(new ErrorRecord(e, ErrorIds.HostNotFound, ErrorCategory.ObjectNotFound, ComputerName));
        }
        catch (LogPathInUseException e)
        {
            ThrowTerminatingError(new ErrorRecord(e, ErrorIds.LogPathInUse, ErrorCategory.ResourceBusy, LogPath));
        }
        catch (Exception e) when (e is System.IO.IOException || e is UnauthorizedAccessException)
        {
            ThrowTerminatingError(new ErrorRecord(e, "LogPathUnwritable", ErrorCategory.WriteError, LogPath));
        }
        finally
        {
            if (progress is not null)
            {
                progress.RecordType = ProgressRecordType.Completed;
                WriteProgress(progress);
            }
        }
    }

    /// <summary>Hands the engine's callbacks (worker threads) to the pipeline thread.</summary>
    private sealed class QueueObserver : IKeyClientObserver, IDisposable
    {
        public QueueObserver(bool verbose) => Verbose = verbose;

        public PipelineQueue<object> Items { get; } = new();

        public bool Verbose { get; }

        public bool WantsSendNotices => Verbose;

        public void OnSending(string clientId, string key) => Items.Add($"Client number {clientId} > {key}");

        public void OnReply(KeyReply reply) => Items.Add(reply);

        public void OnFailure(KeyClientFailure failure) => Items.Add(failure);

        public void Dispose() => Items.Dispose();
    }
}

/// <summary>The TLS parameter check of the client cmdlets, as a terminating error.</summary>
internal static class ClientTlsCheck
{
    public static void Run(PSCmdlet cmdlet, bool useTls, bool skipCertificateCheck, X509Certificate2? certificate)
    {
        try
        {
            TlsParameters.CheckClient(useTls, skipCertificateCheck, certificate);
        }
        catch (TlsParameterException e)
        {
            cmdlet.ThrowTerminatingError(TlsParameters.Record(e, null));
        }
        catch (KeyServerException e)
        {
            cmdlet.ThrowTerminatingError(TlsParameters.Record(e));
        }
    }
}

/// <summary>The exception of an Invoke-KeyClient error record: which sequence stopped, where, and why.</summary>
public sealed class KeyClientException : Exception
{
    public KeyClientException(KeyClientFailure failure)
        : base(failure.Message, failure.Exception)
    {
        Failure = failure;
    }

    public KeyClientFailure Failure { get; }
}

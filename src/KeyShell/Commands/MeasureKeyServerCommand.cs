using System;
using System.Management.Automation;
using System.Security.Cryptography.X509Certificates;
using System.Threading.Tasks;
using KeyShell.Engine.Client;
using KeyShell.Engine.Security;

namespace KeyShell.Commands;

/// <summary>Loads a KeyShell-protocol server and measures it, as redis-benchmark does for Redis.</summary>
[Cmdlet(VerbsDiagnostic.Measure, "KeyServer", DefaultParameterSetName = ByCount)]
[OutputType(typeof(LoadResult))]
public sealed class MeasureKeyServerCommand : KeyShellCmdlet
{
    private const string ByCount = "Count";
    private const string ByDuration = "Duration";

    [Parameter(Position = 0, ValueFromPipelineByPropertyName = true)]
    [Alias("Address", "Cn")]
    [ValidateNotNullOrEmpty]
    public string ComputerName { get; set; } = "127.0.0.1";

    [Parameter(Position = 1, ValueFromPipelineByPropertyName = true)]
    [ArgumentCompleter(typeof(ClientPortCompleter))]
    [ValidateRange(1, 65535)]
    public int Port { get; set; } = 8080;

    [Parameter]
    [ValidateRange(1, 10_000)]
    public int Concurrency { get; set; } = 8;

    [Parameter(ParameterSetName = ByCount)]
    [ValidateRange(1, long.MaxValue)]
    public long Count { get; set; } = 100_000;

    [Parameter(ParameterSetName = ByDuration, Mandatory = true)]
    [ValidateRange(1, 86_400)]
    public int Duration { get; set; }

    [Parameter]
    public ConnectionMode Connection { get; set; } = ConnectionMode.Persistent;

    [Parameter]
    [ValidateRange(1, 1024)]
    public int Pipeline { get; set; } = 1;

    [Parameter]
    public Framing Framing { get; set; } = Framing.Line;

    /// <summary>Seconds a request (a pipelined batch) may wait for its replies; then its requests are errors.</summary>
    [Parameter]
    [ValidateRange(1, 3600)]
    public int TimeoutSec { get; set; } = 10;

    /// <summary>When to send the first request, so that generators on several machines start together.</summary>
    [Parameter]
    public DateTime StartAt { get; set; }

    private DateTime? StartAtUtc => MyInvocation.BoundParameters.ContainsKey(nameof(StartAt)) ? StartAt.ToUniversalTime() : null;

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

    protected override void BeginProcessing() => ClientTlsCheck.Run(this, UseTls, SkipCertificateCheck, Certificate);

    protected override void ProcessRecord()
    {
        var options = new LoadOptions
        {
            ComputerName = ComputerName,
            Port = Port,
            Concurrency = Concurrency,
            Count = ParameterSetName == ByDuration ? 0 : Count,
            Duration = TimeSpan.FromSeconds(Duration),
            Connection = Connection,
            Pipeline = Pipeline,
            Framing = Framing,
            Timeout = TimeSpan.FromSeconds(TimeoutSec),
            UseTls = UseTls,
            SkipCertificateCheck = SkipCertificateCheck,
            ClientCertificate = TlsParameters.ClientCertificate(Certificate),
            StartAt = StartAtUtc,
        };
        LoadGenerator generator;
        try
        {
            generator = new LoadGenerator(options);
        }
        catch (ArgumentException e)
        {
            ThrowTerminatingError(new ErrorRecord(e, ErrorIds.InvalidLoad, ErrorCategory.InvalidArgument, this));
            return;
        }

        WarnIfLate();

        var run = Task.Run(() => generator.RunAsync(Cancellation));
        var progress = new ProgressRecord(2, "Measure-KeyServer", $"{Concurrency} {Connection} connections to {ComputerName}:{Port}");
        var started = StartAtUtc is { } at && at > DateTime.UtcNow ? at : DateTime.UtcNow;
        try
        {
            // The pipeline thread reports progress; the workers only count. A wait for -StartAt shows at once.
            if (started > DateTime.UtcNow)
            {
                ReportWaiting(progress, started);
            }

            // WaitAny, not Wait: a run that faults must reach the catches below as itself, not as an AggregateException.
            while (Task.WaitAny(new Task[] { run }, 250, Cancellation) < 0)
            {
                if (started > DateTime.UtcNow)
                {
                    ReportWaiting(progress, started);
                    continue;
                }

                var done = generator.Completed;
                progress.PercentComplete = ParameterSetName == ByDuration
                    ? (int)Math.Min(100, (DateTime.UtcNow - started).TotalSeconds * 100 / Duration)
                    : (int)Math.Min(100, done * 100 / Count);
                progress.StatusDescription = $"{done} requests";
                WriteProgress(progress);
            }

            var result = run.GetAwaiter().GetResult();
            if (result.Errors > 0)
            {
                WriteWarning($"{result.Errors} of {result.Requests} requests failed (error replies, or no connection).");
            }

            WriteObject(result);
        }
        catch (OperationCanceledException)
        {
            // Ctrl+C: the workers stop through the same token.
        }
        catch (TlsCertificateUntrustedException e)
        {
            ThrowTerminatingError(TlsParameters.Record(e, $"{ComputerName}:{Port}"));
        }
        catch (Exception e) when (e is System.Net.Sockets.SocketException || e is ArgumentException)
        {
            ThrowTerminatingError(new ErrorRecord(e, ErrorIds.HostNotFound, ErrorCategory.ObjectNotFound, ComputerName));
        }
        finally
        {
            progress.RecordType = ProgressRecordType.Completed;
            WriteProgress(progress);
        }
    }

    /// <summary>A record of its own (not the run's, which goes on changing): hosts and streams that keep records keep this one as it was.</summary>
    private void ReportWaiting(ProgressRecord progress, DateTime startUtc) =>
        WriteProgress(new ProgressRecord(progress.ActivityId, progress.Activity, $"Waiting to start at {startUtc.ToLocalTime():T} (in {Math.Ceiling((startUtc - DateTime.UtcNow).TotalSeconds):0} s)")
        {
            PercentComplete = -1,
        });

    /// <summary>A start time already past starts at once; more than a second late is worth saying (clocks apart, a slow session).</summary>
    private void WarnIfLate()
    {
        if (StartAtUtc is { } at && DateTime.UtcNow - at > TimeSpan.FromSeconds(1))
        {
            WriteWarning($"-StartAt {StartAt:O} was {(DateTime.UtcNow - at).TotalSeconds:0.0} s ago: starting now, not together with the other generators.");
        }
    }
}

using System;
using System.Linq;
using System.Management.Automation;
using System.Security.Cryptography.X509Certificates;
using System.Threading;
using System.Threading.Tasks;
using KeyShell.Engine.Client;
using KeyShell.Engine.Security;

namespace KeyShell.Commands;

/// <summary>
/// Loads a KeyShell-protocol server and measures it, as wrk2 and redis-benchmark do: a closed loop by
/// default, an open loop at a fixed rate with -Rate; HdrHistogram latencies, errors by kind, a timeline.
/// </summary>
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

    /// <summary>Requests per second in all (open loop); latencies count from the time each request was due.</summary>
    [Parameter]
    [ValidateRange(0.01, 10_000_000.0)]
    public double Rate { get; set; }

    /// <summary>The keys to send, in turn (the seed's 0 to 9 by default).</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string[] Keys { get; set; } = LoadOptions.SeedKeys.ToArray();

    /// <summary>Worker n's client id is this prefix and n ('w' by default: w0, w1, ...).</summary>
    [Parameter]
    [ValidateNotNull]
    public string ClientIdPrefix { get; set; } = "w";

    /// <summary>Seconds of load before anything is measured.</summary>
    [Parameter]
    [ValidateRange(0, 3600)]
    public int WarmupSec { get; set; }

    /// <summary>Takes any one-line reply that does not start with 'Error:' as a success (servers whose handlers reply in their own form).</summary>
    [Parameter]
    public SwitchParameter SkipReplyCheck { get; set; }

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

    private DateTime? StartAtUtc => MyInvocation.BoundParameters.ContainsKey(nameof(StartAt)) ? StartAt.ToUniversalTime() : null;

    protected override void BeginProcessing() => ClientTlsCheck.Run(this, UseTls, SkipCertificateCheck, Certificate);

    protected override void ProcessRecord()
    {
        var generator = CreateGenerator();
        WarnIfLate();

        // Ctrl+C in a console ends the load and still returns what ran (a stopped pipeline could return nothing).
        using var userStop = new CancellationTokenSource();
        using var either = CancellationTokenSource.CreateLinkedTokenSource(Cancellation, userStop.Token);
        using var consoleBreak = ConsoleBreak.TryTake(Host);
        var run = Task.Run(() => generator.RunAsync(either.Token));
        var progress = new LoadProgressBar(this, generator, StartAtUtc, ParameterSetName == ByDuration ? Duration : null, Count, WarmupSec);
        try
        {
            // WaitAny, not Wait: a run that faults must reach the catches below as itself, not as an AggregateException.
            while (Task.WaitAny(new Task[] { run }, 250, Cancellation) < 0)
            {
                if (consoleBreak?.Pressed() == true && !userStop.IsCancellationRequested)
                {
                    WriteVerbose("Ctrl+C: stopping the load; the result is of what ran.");
                    userStop.Cancel();
                }

                progress.Update();
            }

            var result = run.GetAwaiter().GetResult();
            WarnAbout(result);
            WriteObject(result);
        }
        catch (OperationCanceledException) when (!Cancellation.IsCancellationRequested)
        {
            // Ctrl+C while waiting for -StartAt: nothing ran, so there is nothing to return.
            WriteWarning("Stopped before the load began (while waiting for -StartAt): nothing was measured.");
        }
        catch (OperationCanceledException)
        {
            // The pipeline was stopped: the workers stop through the same token.
        }
        catch (TlsCertificateUntrustedException e)
        {
            ThrowTerminatingError(TlsParameters.Record(e, $"{ComputerName}:{Port}"));
        }
        catch (System.Net.Sockets.SocketException e)
        {
            ThrowTerminatingError(new ErrorRecord(new InvalidOperationException($"Cannot find the host '{ComputerName}': {e.Message}.", e), ErrorIds.HostNotFound, ErrorCategory.ObjectNotFound, ComputerName));
        }
        finally
        {
            progress.Complete();
        }
    }

    private LoadGenerator CreateGenerator()
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
            Rate = MyInvocation.BoundParameters.ContainsKey(nameof(Rate)) ? Rate : null,
            Keys = Keys,
            ClientIdPrefix = ClientIdPrefix,
            Warmup = TimeSpan.FromSeconds(WarmupSec),
            SkipReplyCheck = SkipReplyCheck,
        };
        try
        {
            return new LoadGenerator(options);
        }
        catch (LoadOptionsException e)
        {
            // The target is what the user gave, named as the parameter they gave it with.
            var parameter = e.Option switch
            {
                nameof(LoadOptions.Timeout) => nameof(TimeoutSec),
                nameof(LoadOptions.Warmup) => nameof(WarmupSec),
                _ => e.Option,
            };
            ThrowTerminatingError(new ErrorRecord(new ArgumentException($"-{parameter}: {e.Message}"), ErrorIds.InvalidLoad, ErrorCategory.InvalidArgument, e.Value));
            throw; // not reached: ThrowTerminatingError throws
        }
    }

    /// <summary>What the user must not miss: failures by kind, a rate not held, a run cut short, no latencies.</summary>
    private void WarnAbout(LoadResult result)
    {
        if (result.Errors > 0)
        {
            var kinds = Enum.GetValues(typeof(LoadErrorKind)).Cast<LoadErrorKind>()
                .Where(k => result.ErrorsOf(k) > 0)
                .Select(k => $"{result.ErrorsOf(k)} {k}");
            WriteWarning($"{result.Errors} of {result.Requests} requests failed ({string.Join(", ", kinds)}).");
        }

        if (result.Requests > 0 && result.Latency.Count == 0)
        {
            WriteWarning("No request succeeded: the result has no latencies (P50, P99 and the others are empty).");
        }

        if (result.Rate is { } rate && !result.Interrupted && result.AchievedRate < 0.99 * rate)
        {
            WriteWarning($"The rate asked was {rate:N0} requests/s; {result.AchievedRate:N0}/s were achieved, {result.LateRequests} requests were sent late: the server (or this machine) did not keep up.");
        }

        if (result.Interrupted)
        {
            WriteWarning($"Stopped: the result is of the {result.Requests} requests that ran (Interrupted is True).");
        }
    }

    /// <summary>A start time already past starts at once; more than a second late is worth saying (clocks apart, a slow session).</summary>
    private void WarnIfLate()
    {
        if (StartAtUtc is { } at && DateTime.UtcNow - at > TimeSpan.FromSeconds(1))
        {
            WriteWarning($"-StartAt {StartAt:O} was {(DateTime.UtcNow - at).TotalSeconds:0.0} s ago: starting now, not together with the other generators.");
        }
    }
}

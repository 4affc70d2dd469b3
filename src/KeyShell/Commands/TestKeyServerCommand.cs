using System;
using System.Management.Automation;
using System.Security.Cryptography.X509Certificates;
using KeyShell.Engine.Client;
using KeyShell.Engine.Security;

namespace KeyShell.Commands;

/// <summary>What Test-KeyServer -Detailed returns.</summary>
public sealed class KeyServerTestResult
{
    public KeyServerTestResult(string computerName, int port, ProbeResult probe)
    {
        ComputerName = computerName;
        Port = port;
        Connected = probe.Connected;
        Reachable = probe.Reachable;
        Latency = probe.Latency;
        Reply = probe.Reply;
        Error = probe.Error;
    }

    public string ComputerName { get; }

    public int Port { get; }

    /// <summary>The TCP connection (and, with -UseTls, the TLS handshake) succeeded.</summary>
    public bool Connected { get; }

    /// <summary>A server of the protocol answered the probe (an error reply counts); what Test-KeyServer returns without -Detailed.</summary>
    public bool Reachable { get; }

    /// <summary>Connect and, with a reply, the probe request's round trip.</summary>
    public TimeSpan? Latency { get; }

    /// <summary>The server's reply to <c>probe 0</c>.</summary>
    public string? Reply { get; }

    /// <summary>Why the server is not reachable: refused, no answer, or a reply that is not the protocol's.</summary>
    public string? Error { get; }
}

/// <summary>Tells whether a key server answers a probe request in the protocol: $true/$false, or a detailed object.</summary>
[Cmdlet(VerbsDiagnostic.Test, "KeyServer")]
[OutputType(typeof(bool), typeof(KeyServerTestResult))]
public sealed class TestKeyServerCommand : KeyShellCmdlet
{
    [Parameter(Position = 0, ValueFromPipelineByPropertyName = true)]
    [Alias("Address", "Cn")]
    [ArgumentCompleter(typeof(ComputerNameCompleter))]
    [ValidateNotNullOrEmpty]
    public string ComputerName { get; set; } = "127.0.0.1";

    [Parameter(Position = 1, ValueFromPipelineByPropertyName = true)]
    [ArgumentCompleter(typeof(ClientPortCompleter))]
    [ValidateRange(1, 65535)]
    public int Port { get; set; } = 8080;

    [Parameter]
    [ValidateRange(1, 600)]
    public int TimeoutSec { get; set; } = 2;

    /// <summary>Returns an object with the latency, the reply to the probe request, and why a server is not reachable.</summary>
    [Parameter]
    public SwitchParameter Detailed { get; set; }

    /// <summary>Takes any one-line reply that does not start with 'Error:' as the protocol's (servers whose handlers reply in their own form).</summary>
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

    protected override void BeginProcessing() => ClientTlsCheck.Run(this, UseTls, SkipCertificateCheck, Certificate);

    protected override void ProcessRecord()
    {
        // A server bound to every interface is reached through loopback.
        var target = ComputerName switch
        {
            "0.0.0.0" => "127.0.0.1",
            "::" => "::1",
            _ => ComputerName,
        };
        ProbeResult probe;
        var tls = UseTls ? new TlsClientSettings { SkipCertificateCheck = SkipCertificateCheck, ClientCertificate = TlsParameters.ClientCertificate(Certificate) } : null;
        try
        {
            // Always with a request: a port that takes connections is not yet a key server (an HTTP server takes them too).
            probe = KeyProbe.ProbeAsync(target, Port, TimeSpan.FromSeconds(TimeoutSec), sendRequest: true, tls, null, !SkipReplyCheck, Cancellation).GetAwaiter().GetResult();
        }
        catch (TlsCertificateUntrustedException e)
        {
            // The server answers, but cannot be trusted: an error to act on, and not a usable server.
            WriteError(TlsParameters.Record(e, $"{ComputerName}:{Port}"));
            probe = new ProbeResult(false, null, null, e.Message);
        }
        catch (Exception e) when (e is System.Net.Sockets.SocketException || e is ArgumentException)
        {
            probe = new ProbeResult(false, null, null, e.Message);
        }

        if (Detailed)
        {
            WriteObject(new KeyServerTestResult(ComputerName, Port, probe));
        }
        else
        {
            WriteVerbose(probe.Reachable ? $"{ComputerName}:{Port} answered in {probe.Latency?.TotalMilliseconds:0.0} ms." : $"{ComputerName}:{Port}: {probe.Error}");
            WriteObject(probe.Reachable);
        }
    }
}

using System;
using System.Management.Automation;
using System.Net;
using System.Security;
using System.Security.Cryptography.X509Certificates;
using KeyShell.Engine.Client;
using KeyShell.Engine.Faults;
using KeyShell.Engine.Security;
using KeyShell.Engine.Server;
using KeyShell.Engine.Server.Upstream;

namespace KeyShell.Commands;

/// <summary>Starts a key-lookup server in the background and returns it; with -Wait, serves in the foreground.</summary>
[Cmdlet(VerbsLifecycle.Start, "KeyServer", DefaultParameterSetName = ByMap)]
[OutputType(typeof(KeyServer))]
public sealed class StartKeyServerCommand : KeyShellCmdlet
{
    // Under -Wait at most 100 console lines per 100 ms: more than a person reads, and a bounded cost to serving.
    private const int EchoLinesPerTick = 100;
    private const int EchoTickMilliseconds = 100;
    private const string ByMap = "KeyMap";
    private const string ByHandler = "Handler";
    private const string ByUpstream = "Upstream";

    [Parameter(Position = 0)]
    [ArgumentCompleter(typeof(StartPortCompleter))]
    [ValidateRange(0, 65535)]
    public int Port { get; set; } = KeyServerOptions.DefaultPort;

    [Parameter]
    [ArgumentCompleter(typeof(AddressCompleter))]
    [ValidateNotNullOrEmpty]
    public string Address { get; set; } = "127.0.0.1";

    [Parameter]
    [ValidateNotNullOrEmpty]
    public string LogPath { get; set; } = KeyServerOptions.DefaultLogFileName;

    /// <summary>Runs without a conversation log.</summary>
    [Parameter]
    public SwitchParameter NoLog { get; set; }

    /// <summary>Puts an ISO-8601 UTC timestamp in front of each log line.</summary>
    [Parameter]
    public SwitchParameter Timestamp { get; set; }

    /// <summary>A hashtable, or the path of a .json or .psd1 file, of keys and values; the seed's map by default.</summary>
    [Parameter(ParameterSetName = ByMap)]
    [ValidateNotNull]
    public object? KeyMap { get; set; }

    /// <summary>Computes each reply: <c>{ param($Request) ... }</c>, run on a pool of background runspaces.</summary>
    [Parameter(ParameterSetName = ByHandler, Mandatory = true)]
    [ValidateNotNull]
    public ScriptBlock? Handler { get; set; }

    /// <summary>Passed to the handler after the request.</summary>
    [Parameter(ParameterSetName = ByHandler)]
    public object[]? ArgumentList { get; set; }

    /// <summary>Runs once in each handler runspace (imports, helper functions).</summary>
    [Parameter(ParameterSetName = ByHandler)]
    public ScriptBlock? InitializationScript { get; set; }

    /// <summary>How many handler runspaces run at once.</summary>
    [Parameter(ParameterSetName = ByHandler)]
    [ValidateRange(1, 256)]
    public int ThrottleLimit { get; set; } = Environment.ProcessorCount;

    /// <summary>How long the handler (or, with -Upstream, the upstream) may take for one request before the reply is an error.</summary>
    [Parameter(ParameterSetName = ByHandler)]
    [Parameter(ParameterSetName = ByUpstream)]
    [ValidateRange(1, 3600)]
    public int HandlerTimeoutSec { get; set; } = 30;

    /// <summary>
    /// Upstream mode: host:port of a server of the protocol (the seed's, or anyone's) that answers every request;
    /// the key map is not used. In the Handler and KeyMap sets too, so that -Handler with it is a clear error and
    /// -KeyMap with it is ignored, as the help says.
    /// </summary>
    [Parameter(ParameterSetName = ByMap)]
    [Parameter(ParameterSetName = ByHandler)]
    [Parameter(ParameterSetName = ByUpstream, Mandatory = true)]
    [ValidateNotNullOrEmpty]
    public string? Upstream { get; set; }

    /// <summary>How requests to the upstream are framed: Line (LF-ended) or Legacy (the seed's, no terminator).</summary>
    [Parameter]
    public Framing UpstreamFraming { get; set; } = Framing.Line;

    /// <summary>A new upstream connection per request, or one per client connection (the default).</summary>
    [Parameter]
    public ConnectionMode UpstreamConnection { get; set; } = ConnectionMode.Persistent;

    [Parameter]
    [ValidateRange(3, 1024 * 1024)]
    public int MaxLineLength { get; set; } = 1024;

    [Parameter]
    [ValidateRange(0, int.MaxValue / 1000)]
    public int IdleTimeoutSec { get; set; } = 60;

    [Parameter]
    [ValidateRange(1, 1_000_000)]
    public int MaxConnections { get; set; } = 10_000;

    /// <summary>TLS handshakes in progress at once (default: the smaller of MaxConnections and 1,024).</summary>
    [Parameter]
    [ValidateRange(1, 1_000_000)]
    public int MaxHandshakes { get; set; }

    [Parameter]
    [ValidateRange(0, 3600)]
    public int ShutdownTimeoutSec { get; set; } = 5;

    /// <summary>Serves in the foreground, showing the seed's console lines, until 'q', Ctrl+C or a stop.</summary>
    [Parameter]
    public SwitchParameter Wait { get; set; }

    // TLS and address rules belong to every parameter set (KeyMap and Handler alike); which of them go
    // together is checked in code (TlsParameters), not by a set for every combination.

    /// <summary>The certificate (with its private key) the port presents; it then speaks TLS only.</summary>
    [Parameter]
    [ValidateNotNull]
    public X509Certificate2? Certificate { get; set; }

    /// <summary>A PEM (certificate and key, or with -KeyPath) or PFX file: the port then speaks TLS only.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? CertificatePath { get; set; }

    /// <summary>The PEM private key of -CertificatePath, when it is in a file of its own.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? KeyPath { get; set; }

    /// <summary>The password of a PFX file or of an encrypted PEM key.</summary>
    [Parameter]
    [ValidateNotNull]
    public SecureString? CertificatePassword { get; set; }

    /// <summary>Mutual TLS: serves only clients whose certificate chains to -ClientCertificateAuthorityPath.</summary>
    [Parameter]
    public SwitchParameter RequireClientCertificate { get; set; }

    /// <summary>The authority certificates (PEM) client certificates must chain to.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? ClientCertificateAuthorityPath { get; set; }

    /// <summary>CIDR rules (10.0.0.0/8, fd00::/8, 127.0.0.1): only peers they allow are served.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string[]? AllowedAddress { get; set; }

    /// <summary>The faults the server applies (New-KeyFault), in order: the first that takes a request applies.</summary>
    [Parameter]
    [AllowEmptyCollection]
    public KeyFault[]? Fault { get; set; }

    /// <summary>The seed the faults' draws come from: the same seed faults the same requests on every run.</summary>
    [Parameter]
    public int FaultSeed { get; set; }

    protected override void EndProcessing()
    {
        var options = BuildOptions();
        options.Faults = FaultParameters.Read(this, MyInvocation.BoundParameters.ContainsKey(nameof(Fault)), Fault, FaultSeed);
        ReadSecurity(options);
        KeyServer server;
        try
        {
            server = KeyServer.Start(options);
        }
        catch (KeyServerException e)
        {
            (options.Handler as IDisposable)?.Dispose();
            ThrowTerminatingError(ErrorIds.Record(e, ErrorIds.For(e.Kind), e.Target));
            return;
        }

        // Only once the address is known to be this machine's: a failed bind says why, with no warning before it.
        if (!IsLoopback(options.Address) && options.Certificate is null && options.AllowedAddresses is null)
        {
            var where = IPAddress.Any.Equals(options.Address) || IPAddress.IPv6Any.Equals(options.Address) ? "every interface" : "an address beyond loopback";
            WriteWarning($"The server listens on {where} ({Address}) in plain text and serves anyone who can reach it: they can query every key and fill its log. Give it a certificate (-CertificatePath, -Certificate) for TLS, and -AllowedAddress to limit who may connect; see about_KeyShell.");
        }

        ServerRegistry.Add(server);
        if (Wait)
        {
            ServeInForeground(server);
        }
        else
        {
            WriteObject(server);
        }
    }

    private KeyServerOptions BuildOptions()
    {
        var upstream = ReadUpstream();
        var keyMap = ReadKeyMap();
        var logPath = NoLog ? null : ResolveLogPath();
        try
        {
            return new KeyServerOptions
            {
                Address = KeyServerOptions.ParseAddress(Address),
                Port = Port,
                LogPath = logPath,
                Timestamps = Timestamp,
                KeyMap = keyMap,
                MaxLineLength = MaxLineLength,
                IdleTimeout = TimeSpan.FromSeconds(IdleTimeoutSec),
                MaxConnections = MaxConnections,
                MaxHandshakes = MyInvocation.BoundParameters.ContainsKey(nameof(MaxHandshakes)) ? MaxHandshakes : null,
                ShutdownTimeout = TimeSpan.FromSeconds(ShutdownTimeoutSec),
                Handler = upstream is not null ? new UpstreamHandler(upstream, UpstreamFraming, UpstreamConnection) : Handler is null ? null : CreateHandler(Handler),
                HandlerTimeout = TimeSpan.FromSeconds(HandlerTimeoutSec),
                DiagnosticQueue = new Engine.Logging.DiagnosticQueue(),
            };
        }
        catch (KeyServerException e)
        {
            ThrowTerminatingError(ErrorIds.Record(e, ErrorIds.For(e.Kind), e.Target));
            throw; // not reached
        }
    }

    /// <summary>-Upstream read and checked (with -Handler it is an error, and so are its settings without it); null without it.</summary>
    private UpstreamTarget? ReadUpstream()
    {
        if (Upstream is null)
        {
            if (MyInvocation.BoundParameters.ContainsKey(nameof(UpstreamFraming)) || MyInvocation.BoundParameters.ContainsKey(nameof(UpstreamConnection)))
            {
                ThrowTerminatingError(new ErrorRecord(
                    new ArgumentException("-UpstreamFraming and -UpstreamConnection say how to talk to an upstream server: give -Upstream <host:port> with them."),
                    ErrorIds.UpstreamSettingWithoutUpstream,
                    ErrorCategory.InvalidArgument,
                    null));
            }

            return null;
        }

        if (Handler is not null)
        {
            ThrowTerminatingError(new ErrorRecord(
                new ArgumentException("-Upstream and -Handler cannot be used together: with -Upstream the upstream server answers every request, with -Handler the script block does. Give one of them."),
                ErrorIds.UpstreamWithHandler,
                ErrorCategory.InvalidArgument,
                Upstream));
        }

        try
        {
            return UpstreamTarget.Parse(Upstream);
        }
        catch (KeyServerException e)
        {
            ThrowTerminatingError(ErrorIds.Record(e, ErrorIds.For(e.Kind), e.Target));
            throw; // not reached
        }
    }

    private Engine.Protocol.KeyMap ReadKeyMap()
    {
        try
        {
            return KeyMap is null ? Engine.Protocol.KeyMap.Seed : KeyMapReader.Read(this, KeyMap);
        }
        catch (Exception e) when (e is ArgumentException || e is System.IO.IOException || e is UnauthorizedAccessException || e is RuntimeException)
        {
            ThrowTerminatingError(new ErrorRecord(e, ErrorIds.InvalidKeyMap, ErrorCategory.InvalidArgument, KeyMap));
            throw; // not reached
        }
    }

    private string ResolveLogPath()
    {
        try
        {
            return ResolvePath(LogPath);
        }
        catch (Exception e) when (e is ArgumentException || e is System.IO.IOException || e is RuntimeException || e is NotSupportedException)
        {
            ThrowTerminatingError(new ErrorRecord(e, "LogPathUnwritable", ErrorCategory.WriteError, LogPath));
            throw; // not reached
        }
    }

    /// <summary>TLS, mutual TLS and address rules into the options; a terminating error for anything wrong.</summary>
    private void ReadSecurity(KeyServerOptions options)
    {
        try
        {
            if (RequireClientCertificate != (ClientCertificateAuthorityPath is not null))
            {
                throw new TlsParameterException("-RequireClientCertificate and -ClientCertificateAuthorityPath go together: the first asks for client certificates, the second names the authorities they must chain to.");
            }

            options.Certificate = TlsParameters.ReadServerCertificate(this, Certificate, CertificatePath, KeyPath, CertificatePassword);
            if (RequireClientCertificate && options.Certificate is null)
            {
                throw new TlsParameterException("-RequireClientCertificate needs TLS: give the server's certificate too (-CertificatePath or -Certificate).");
            }

            if (ClientCertificateAuthorityPath is not null)
            {
                options.RequireClientCertificate = true;
                options.ClientCertificatePolicy = ClientCertificatePolicy.FromFile(ResolvePath(ClientCertificateAuthorityPath));
            }

            options.AllowedAddresses = AllowedAddress is null ? null : AddressRules.Parse(AllowedAddress);
        }
        catch (TlsParameterException e)
        {
            (options.Handler as IDisposable)?.Dispose();
            ThrowTerminatingError(TlsParameters.Record(e, null));
        }
        catch (KeyServerException e)
        {
            (options.Handler as IDisposable)?.Dispose();
            ThrowTerminatingError(TlsParameters.Record(e));
        }
    }

    /// <summary>127.0.0.0/8 and ::1 (also as ::ffff:127.x): reachable from this machine only.</summary>
    private static bool IsLoopback(IPAddress address) =>
        IPAddress.IsLoopback(address) || (address.IsIPv4MappedToIPv6 && IPAddress.IsLoopback(address.MapToIPv4()));

    private ScriptBlockHandler CreateHandler(ScriptBlock handler)
    {
        var variables = new UsingVariables(this);
        string handlerText;
        string? initializationText;
        try
        {
            handlerText = variables.Rewrite(handler, "-Handler");
        }
        catch (UsingVariableException e)
        {
            ThrowTerminatingError(new ErrorRecord(e, ErrorIds.InvalidHandler, ErrorCategory.InvalidArgument, handler));
            throw; // not reached
        }

        try
        {
            initializationText = InitializationScript is null ? null : variables.Rewrite(InitializationScript, "-InitializationScript");
        }
        catch (UsingVariableException e)
        {
            ThrowTerminatingError(new ErrorRecord(e, ErrorIds.InvalidHandler, ErrorCategory.InvalidArgument, InitializationScript));
            throw; // not reached
        }

        try
        {
            return new ScriptBlockHandler(handlerText, ArgumentList, initializationText, variables.Values, ThrottleLimit);
        }
        catch (Exception e) when (e is InvalidOperationException || e is RuntimeException)
        {
            ThrowTerminatingError(new ErrorRecord(e, ErrorIds.InvalidHandler, ErrorCategory.InvalidArgument, InitializationScript));
            throw; // not reached
        }
    }

    /// <summary>
    /// The seed's foreground server: its console lines (as many as a person can read; under load a count
    /// of the rest, see <see cref="ConsoleEcho"/>), the server's diagnostics as warnings and verbose lines,
    /// and 'q' to stop, read only where a person can press it (a console host with its input not
    /// redirected). Everywhere Ctrl+C, a stop from elsewhere (Stop-KeyServer in another runspace,
    /// Remove-Module) or process exit ends it.
    /// </summary>
    private void ServeInForeground(KeyServer server)
    {
        var readKeys = Host.Name == "ConsoleHost" && !Console.IsInputRedirected && Environment.UserInteractive;
        var echo = new ConsoleEcho(server, EchoLinesPerTick);
        var lastSummary = Environment.TickCount;
        try
        {
            WriteHostLine(readKeys ? "Server launched... (press 'q' to quit)" : "Server launched... (press Ctrl+C to stop)");
            WriteHostLine($"Server waiting for connexion on the port {server.Port}...");
            while (!server.Completion.Wait(EchoTickMilliseconds, Cancellation))
            {
                while (echo.TryTake(out var line))
                {
                    WriteHostLine(line);
                }

                if (unchecked(Environment.TickCount - lastSummary) >= 1000)
                {
                    lastSummary = Environment.TickCount;
                    if (echo.TakeUnshown() is > 0 and var unshown)
                    {
                        WriteHostLine(server.LogPath is null
                            ? $"[Server] {unshown} requests and connections not shown (the server keeps no log: -NoLog)."
                            : $"[Server] {unshown} requests and connections not shown (the log has every request).");
                    }
                }

                echo.NextTick();
                WriteDiagnostics(server);
                if (readKeys && Console.KeyAvailable && char.ToLowerInvariant(Console.ReadKey(intercept: true).KeyChar) == 'q')
                {
                    WriteHostLine("[Server] Stop asked...");
                    break;
                }
            }
        }
        catch (OperationCanceledException)
        {
            // Ctrl+C: stop below; the pipeline is stopping, so nothing more is written.
        }
        finally
        {
            echo.Dispose();
            server.Stop();
            ServerRegistry.Remove(server);
        }

        while (echo.TryTake(out var line))
        {
            WriteHostLine(line);
        }

        WriteDiagnostics(server);
        WriteHostLine("[Server] Stopped.");
        WriteObject(server);
    }
}

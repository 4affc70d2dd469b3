using System.Management.Automation;
using KeyShell.Engine.Client;
using KeyShell.Engine.Server;

namespace KeyShell;

/// <summary>The stable ErrorIds of the module (documented in docs/about_KeyShell.md); scripts may match on them.</summary>
internal static class ErrorIds
{
    public const string KeyServerNotFound = "KeyServerNotFound";
    public const string InvalidSequence = "InvalidSequence";
    public const string HostNotFound = "HostNotFound";
    public const string InvalidKeyMap = "InvalidKeyMap";
    public const string InvalidHandler = "InvalidHandler";
    public const string InvalidLoad = "InvalidLoad";
    public const string InvalidMeasurement = "InvalidMeasurement";
    public const string MeasurementMismatch = "MeasurementMismatch";
    public const string InvalidTlsParameters = "InvalidTlsParameters";
    public const string TlsCertificateUntrusted = "TlsCertificateUntrusted";
    public const string NothingToSet = "NothingToSet";
    public const string LogPathInUse = "LogPathInUse";
    public const string DuplicateClientId = "DuplicateClientId";
    public const string NoConversationLog = "NoConversationLog";
    public const string InvalidFault = "InvalidFault";
    public const string LogNotFound = "LogNotFound";
    public const string UnexpectedReply = "UnexpectedReply";
    public const string UnsupportedExportFormat = "UnsupportedExportFormat";
    public const string PictureNotSupported = "PictureNotSupported";
    public const string OneHistogramPerFile = "OneHistogramPerFile";
    public const string ExportFileExists = "ExportFileExists";
    public const string ExportPathUnwritable = "ExportPathUnwritable";
    public const string UpstreamWithHandler = "UpstreamWithHandler";
    public const string UpstreamSettingWithoutUpstream = "UpstreamSettingWithoutUpstream";

    public static (string Id, ErrorCategory Category) For(KeyServerErrorKind kind) => kind switch
    {
        KeyServerErrorKind.AddressInUse => ("PortInUse", ErrorCategory.ResourceUnavailable),
        KeyServerErrorKind.AddressNotAvailable => ("AddressNotAvailable", ErrorCategory.InvalidArgument),
        KeyServerErrorKind.InvalidAddress => ("InvalidAddress", ErrorCategory.InvalidArgument),
        KeyServerErrorKind.AccessDenied => ("PortAccessDenied", ErrorCategory.PermissionDenied),
        KeyServerErrorKind.LogPathUnwritable => ("LogPathUnwritable", ErrorCategory.WriteError),
        KeyServerErrorKind.LogPathInUse => (LogPathInUse, ErrorCategory.ResourceBusy),
        KeyServerErrorKind.InvalidAddressRule => ("InvalidAddressRule", ErrorCategory.InvalidArgument),
        KeyServerErrorKind.CertificateInvalid => ("CertificateInvalid", ErrorCategory.InvalidData),
        KeyServerErrorKind.TlsNotEnabled => ("TlsNotEnabled", ErrorCategory.InvalidOperation),
        KeyServerErrorKind.InvalidUpstream => ("InvalidUpstream", ErrorCategory.InvalidArgument),
        _ => ("ServerSocketError", ErrorCategory.NotSpecified),
    };

    public static (string Id, ErrorCategory Category) For(FailureKind kind) => kind switch
    {
        FailureKind.ConnectFailed => ("ConnectFailed", ErrorCategory.ConnectionError),
        FailureKind.ConnectionLost => ("ConnectionLost", ErrorCategory.ConnectionError),
        FailureKind.Timeout => ("ReplyTimeout", ErrorCategory.OperationTimeout),
        FailureKind.ServerGone => ("ServerGone", ErrorCategory.ConnectionError),
        FailureKind.ProtocolError => ("ProtocolError", ErrorCategory.ProtocolError),
        FailureKind.TlsCertificateUntrusted => (TlsCertificateUntrusted, ErrorCategory.SecurityError),
        FailureKind.TlsHandshakeFailed => ("TlsHandshakeFailed", ErrorCategory.ConnectionError),
        FailureKind.UnexpectedReply => (UnexpectedReply, ErrorCategory.InvalidResult),
        _ => ("Cancelled", ErrorCategory.OperationStopped),
    };

    public static ErrorRecord Record(System.Exception exception, (string Id, ErrorCategory Category) error, object? target) =>
        new(exception, error.Id, error.Category, target);

    /// <summary>A server piped to a log cmdlet that was started with -NoLog; the target is the server.</summary>
    public static ErrorRecord NoLog(KeyServer server) =>
        new(
            new System.InvalidOperationException($"The KeyServer on {server.Address}:{server.Port} runs without a conversation log (it was started with -NoLog): it has no conversation to read. Start it with -LogPath to keep one."),
            NoConversationLog,
            ErrorCategory.InvalidOperation,
            server);

    /// <summary>Two sequences with one client id; the target is the second, as the user wrote it.</summary>
    public static ErrorRecord DuplicateClient(DuplicateClientIdException exception) =>
        new(exception, DuplicateClientId, ErrorCategory.InvalidArgument, exception.Second.ToString());
}

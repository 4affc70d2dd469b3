using System;
using System.Globalization;
using System.Text;
using KeyShell.Engine.Protocol;
using KeyShell.Engine.Faults;
using ClientRefusal = KeyShell.Engine.Server.ClientRefusal;

namespace KeyShell.Engine.Logging;

/// <summary>
/// Writes conversation log lines: <c>[&lt;ISO-8601 UTC&gt; ]&lt;Source&gt;: &lt;payload&gt;</c>, where Source is
/// SYSTEM, Client or Server. Bytes outside printable ASCII, and the backslash, are escaped as \xNN and \\,
/// so a request can never end a line early or forge one. The scan for bytes that need no escape differs between
/// the builds: ConversationLine.NetCore.cs and ConversationLine.NetStandard.cs.
/// </summary>
public static partial class ConversationLine
{
    public const string System = "SYSTEM";
    public const string Client = "Client";
    public const string Server = "Server";

    // The seed's texts, word for word (its spelling included), so scripts written against it keep working.
    public const string Launched = "Server launched";
    public const string Stopped = "Server stopped";
    public const string Connected = "Client connected!";
    public const string Disconnected = "Client deconnected!";

    // KeyShell's own: why the server closed a connection itself (followed by the disconnect line).
    public const string ClosedIdle = "Client closed (idle)";
    public const string ClosedStalled = "Client closed (replies not read)";

    /// <summary>A peer the server turned away (address rules, TLS): <c>Client refused (certificate)</c>.</summary>
    public static string Refused(ClientRefusal reason) => reason switch
    {
        ClientRefusal.Address => "Client refused (address)",
        ClientRefusal.Certificate => "Client refused (certificate)",
        _ => "Client refused (handshake)",
    };

    /// <summary>The reason's word: address, certificate or handshake.</summary>
    public static string RefusalWord(ClientRefusal reason) => reason switch
    {
        ClientRefusal.Address => "address",
        ClientRefusal.Certificate => "certificate",
        _ => "handshake",
    };

    /// <summary>What a fault line's text starts with: <c>SYSTEM: Fault reset (3 7)</c>.</summary>
    public const string FaultWord = "Fault";

    /// <summary>A Refuse fault's text: <c>Fault refuse (connection 5)</c>, the accepted connection's number
    /// (see <see cref="FaultSelector.SelectAtAccept()"/>); no client id or key is known at accept.</summary>
    public static string RefuseFault(long connection) =>
        FaultWord + " " + KeyFault.WordOf(FaultType.Refuse) + " (connection " + connection.ToString(CultureInfo.InvariantCulture) + ")";

    // "SYSTEM: Fault reset (", one per fault type, so a fault line costs no string.
    private static readonly byte[][] FaultPrefixes = BuildFaultPrefixes();

    private static readonly byte[] ClientPrefix = Encoding.ASCII.GetBytes(Client + ": ");
    private static readonly byte[] ServerPrefix = Encoding.ASCII.GetBytes(Server + ": ");
    private static readonly byte[] SystemPrefix = Encoding.ASCII.GetBytes(System + ": ");
    private static readonly byte[] HexDigits = Encoding.ASCII.GetBytes("0123456789ABCDEF");

    /// <summary>The timestamp prefix ("2026-11-25T20:17:30.1234567Z "), or "" when timestamps are off.</summary>
    public static string Timestamp(bool enabled) =>
        enabled ? DateTime.UtcNow.ToString("o", CultureInfo.InvariantCulture) + " " : string.Empty;

    /// <summary><c>Client: &lt;request as received&gt;[ &lt;note&gt;]</c></summary>
    public static void WriteRequest(ByteBuffer log, string timestamp, ReadOnlySpan<byte> request, string? note = null)
    {
        log.WriteAscii(timestamp);
        log.Write(ClientPrefix);
        WriteEscaped(log, request);
        if (note is not null)
        {
            log.WriteByte((byte)' ');
            log.WriteAscii(note);
        }

        log.WriteByte((byte)'\n');
    }

    /// <summary>In a Server line's client position: the request had no valid client.</summary>
    public const string NoClient = "?";

    /// <summary>
    /// <c>Server: &lt;client&gt; &lt;reply&gt;</c>. A request with no valid client shows <see cref="NoClient"/>;
    /// a client whose id really is "?" is written \x3F, so the two can never be confused.
    /// </summary>
    public static void WriteReply(ByteBuffer log, string timestamp, ReadOnlySpan<byte> client, ReadOnlySpan<byte> reply)
    {
        log.WriteAscii(timestamp);
        log.Write(ServerPrefix);
        if (client.IsEmpty)
        {
            log.WriteByte((byte)'?');
        }
        else if (client.Length == 1 && client[0] == (byte)'?')
        {
            log.WriteAscii("\\x3F");
        }
        else
        {
            WriteEscaped(log, client);
        }

        log.WriteByte((byte)' ');
        WriteEscaped(log, reply);
        log.WriteByte((byte)'\n');
    }

    /// <summary><c>SYSTEM: &lt;text&gt;</c></summary>
    public static void WriteSystem(ByteBuffer log, string timestamp, string text)
    {
        log.WriteAscii(timestamp);
        log.Write(SystemPrefix);
        WriteEscaped(log, Encoding.UTF8.GetBytes(text));
        log.WriteByte((byte)'\n');
    }

    /// <summary>
    /// <c>SYSTEM: Fault &lt;type&gt; (&lt;client&gt; &lt;key&gt;)</c>, type in lower case (<c>SYSTEM: Fault reset (3 7)</c>):
    /// a fault applied to a request, written after its Client line, in the place of its Server line (a Delay or
    /// a Slice still delivers the reply: its Server line follows). Client and key are escaped as a Client line's.
    /// </summary>
    public static void WriteFault(ByteBuffer log, string timestamp, FaultType type, ReadOnlySpan<byte> clientId, ReadOnlySpan<byte> key)
    {
        log.WriteAscii(timestamp);
        log.Write(FaultPrefixes[(int)type]);
        WriteEscaped(log, clientId);
        log.WriteByte((byte)' ');
        WriteEscaped(log, key);
        log.WriteByte((byte)')');
        log.WriteByte((byte)'\n');
    }

    /// <summary><c>SYSTEM: Fault refuse (connection &lt;n&gt;)</c>: a connection closed at accept by a Refuse fault.</summary>
    public static void WriteRefuseFault(ByteBuffer log, string timestamp, long connection) =>
        WriteSystem(log, timestamp, RefuseFault(connection));

    /// <summary>The bytes a logged payload stands for: the inverse of <see cref="WriteEscaped"/>.</summary>
    public static byte[] Unescape(string text)
    {
        var bytes = new System.Collections.Generic.List<byte>(text.Length);
        for (var i = 0; i < text.Length; i++)
        {
            if (text[i] == '\\' && i + 1 < text.Length && text[i + 1] == '\\')
            {
                bytes.Add((byte)'\\');
                i++;
            }
            else if (text[i] == '\\' && i + 3 < text.Length && text[i + 1] == 'x' && byte.TryParse(text.Substring(i + 2, 2), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var value))
            {
                bytes.Add(value);
                i += 3;
            }
            else
            {
                bytes.Add(text[i] < 0x80 ? (byte)text[i] : (byte)'?');
            }
        }

        return bytes.ToArray();
    }

    private static byte[][] BuildFaultPrefixes()
    {
        var types = (FaultType[])Enum.GetValues(typeof(FaultType));
        var prefixes = new byte[types.Length][];
        foreach (var type in types)
        {
            prefixes[(int)type] = Encoding.ASCII.GetBytes(System + ": " + FaultWord + " " + KeyFault.WordOf(type) + " (");
        }

        return prefixes;
    }

    /// <summary>Copies printable ASCII as is; escapes the rest (and the backslash) so the line stays whole.</summary>
    public static void WriteEscaped(ByteBuffer log, ReadOnlySpan<byte> bytes)
    {
        while (!bytes.IsEmpty)
        {
            // Runs of plain bytes are copied whole: per-byte writes were the log's largest cost (perf).
            var plain = PlainPrefixLength(bytes);
            log.Write(bytes.Slice(0, plain));
            if (plain == bytes.Length)
            {
                return;
            }

            var b = bytes[plain];
            log.WriteByte((byte)'\\');
            if (b == (byte)'\\')
            {
                log.WriteByte((byte)'\\');
            }
            else
            {
                log.WriteByte((byte)'x');
                log.WriteByte(HexDigits[b >> 4]);
                log.WriteByte(HexDigits[b & 0xF]);
            }

            bytes = bytes.Slice(plain + 1);
        }
    }
}

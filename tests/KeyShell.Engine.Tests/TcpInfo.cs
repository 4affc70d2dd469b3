using System.Net.Sockets;

namespace KeyShell.Engine.Tests;

/// <summary>What the kernel knows about a TCP socket (Linux's TCP_INFO).</summary>
internal static class TcpInfo
{
    private const int IpProtocolTcp = 6;
    private const int TcpInfoOption = 11;
    private const int TotalRetransOffset = 100; // struct tcp_info: 8 one-byte fields, then tcpi_total_retrans is the 24th __u32

    /// <summary>
    /// Segments the kernel has sent again on this socket, SYNs included: read right after a connect, anything
    /// but 0 means a SYN went unanswered (the listen queue dropped it) and was retried a second later.
    /// </summary>
    public static int Retransmissions(Socket socket)
    {
        if (!OperatingSystem.IsLinux())
        {
            throw new PlatformNotSupportedException("TCP_INFO is read on Linux only.");
        }

        var info = new byte[256];
        var length = socket.GetRawSocketOption(IpProtocolTcp, TcpInfoOption, info);
        if (length < TotalRetransOffset + 4)
        {
            throw new NotSupportedException($"TCP_INFO returned {length} bytes, too few to hold tcpi_total_retrans.");
        }

        return BitConverter.ToInt32(info, TotalRetransOffset);
    }
}

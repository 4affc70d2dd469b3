using System.Text;

namespace KeyShell.Engine.Client;

/// <summary>A client's request on the wire, in either framing: the sequences' and the upstream mode's, written once.</summary>
internal static class RequestEncoding
{
    /// <summary><c>&lt;client&gt; &lt;key&gt;</c>, ended by LF in line framing, with no terminator in the seed's.</summary>
    public static byte[] For(string clientId, string key, Framing framing) =>
        Encoding.ASCII.GetBytes(framing == Framing.Line ? clientId + " " + key + "\n" : clientId + " " + key);
}

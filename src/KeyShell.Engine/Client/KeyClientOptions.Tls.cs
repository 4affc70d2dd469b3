using System;

namespace KeyShell.Engine.Client;

/// <summary>TLS for Invoke-KeyClient's sequences: see <see cref="ClientTlsOptions"/>.</summary>
public sealed partial class KeyClientOptions : ClientTlsOptions
{
    private protected override string ServerName => ComputerName;

    private protected override TimeSpan HandshakeTimeout => Timeout;
}

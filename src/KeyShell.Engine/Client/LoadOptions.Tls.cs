using System;

namespace KeyShell.Engine.Client;

/// <summary>TLS for Measure-KeyServer's workers: see <see cref="ClientTlsOptions"/>.</summary>
public sealed partial class LoadOptions : ClientTlsOptions
{
    private protected override string ServerName => ComputerName;

    private protected override TimeSpan HandshakeTimeout => Timeout;
}

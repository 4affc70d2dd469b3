using System;
using System.Globalization;

namespace KeyShell.Engine.Server.Upstream;

/// <summary>Where upstream mode sends its requests: a host (name or IP literal) and a port, as users write it, host:port.</summary>
public sealed class UpstreamTarget
{
    public UpstreamTarget(string host, int port)
    {
        if (string.IsNullOrWhiteSpace(host))
        {
            throw new ArgumentException("The upstream host is empty.", nameof(host));
        }

        if (port < 1 || port > 65535)
        {
            throw new ArgumentOutOfRangeException(nameof(port), port, "The upstream port must be between 1 and 65535.");
        }

        Host = host;
        Port = port;
    }

    public string Host { get; }

    public int Port { get; }

    /// <summary>Reads <c>host:port</c> (an IPv6 literal in brackets: <c>[::1]:8080</c>); anything else is an
    /// <see cref="KeyServerErrorKind.InvalidUpstream"/> error naming what was wrong.</summary>
    public static UpstreamTarget Parse(string text)
    {
        var value = text?.Trim() ?? string.Empty;
        if (value.IndexOf("://", StringComparison.Ordinal) >= 0)
        {
            throw Invalid(text, "give it as host:port, with no scheme, for example 127.0.0.1:8080");
        }

        var colon = value.LastIndexOf(':');
        if (colon <= 0 || colon == value.Length - 1)
        {
            throw Invalid(text, "give it as host:port, for example 127.0.0.1:8080 or [::1]:8080");
        }

        var host = value.Substring(0, colon);
        if (host.IndexOf(':') >= 0 && !(host.StartsWith("[", StringComparison.Ordinal) && host.EndsWith("]", StringComparison.Ordinal)))
        {
            throw Invalid(text, "an IPv6 address goes in brackets, for example [::1]:8080");
        }

        host = host.Trim('[', ']');
        if (host.Length == 0 || host.IndexOf(' ') >= 0)
        {
            throw Invalid(text, "the host is missing or has spaces; give it as host:port");
        }

        if (!int.TryParse(value.Substring(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port < 1 || port > 65535)
        {
            throw Invalid(text, "the port must be a number from 1 to 65535");
        }

        return new UpstreamTarget(host, port);
    }

    /// <summary>host:port, with an IPv6 literal in brackets: what Parse reads back.</summary>
    public override string ToString() => (Host.IndexOf(':') >= 0 ? "[" + Host + "]" : Host) + ":" + Port.ToString(CultureInfo.InvariantCulture);

    private static KeyServerException Invalid(string? text, string why) =>
        new(KeyServerErrorKind.InvalidUpstream, $"'{text}' is not an upstream server: {why}.", text);
}

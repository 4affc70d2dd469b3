using System;
using System.Collections.Generic;
using KeyShell.Engine.Protocol;

namespace KeyShell.Engine.Client;

/// <summary>One client's keys, sent strictly in order: the seed's <c>"&lt;client&gt; &lt;key&gt; &lt;key&gt; ..."</c>.</summary>
public sealed class ClientSequence
{
    public ClientSequence(string clientId, IReadOnlyList<string> keys)
    {
        if (!RequestParser.IsClientId(clientId))
        {
            throw new FormatException($"'{clientId}' is not a client id: 1 to 64 visible ASCII characters, no spaces.");
        }

        foreach (var key in keys)
        {
            if (string.IsNullOrEmpty(key) || key.Length > 512 || !RequestParser.IsToken(System.Text.Encoding.UTF8.GetBytes(key)))
            {
                throw new FormatException($"'{key}' is not a key: 1 or more visible ASCII characters, no spaces.");
            }
        }

        ClientId = clientId;
        Keys = keys;
    }

    public string ClientId { get; }

    public IReadOnlyList<string> Keys { get; }

    /// <summary>Reads <c>"3 7 8 9"</c>: client 3 sends keys 7, 8 and 9. Tokens are separated by whitespace.</summary>
    public static ClientSequence Parse(string text)
    {
        var tokens = (text ?? string.Empty).Split(new[] { ' ', '\t' }, StringSplitOptions.RemoveEmptyEntries);
        if (tokens.Length == 0)
        {
            throw new FormatException("The sequence is empty: write '<client> <key> [<key> ...]', for example '1 1 2 3'.");
        }

        if (tokens.Length == 1)
        {
            throw new FormatException($"The sequence '{text}' has a client but no keys: write '<client> <key> [<key> ...]', for example '1 1 2 3'.");
        }

        var keys = new string[tokens.Length - 1];
        Array.Copy(tokens, 1, keys, 0, keys.Length);
        return new ClientSequence(tokens[0], keys);
    }

    public override string ToString() => ClientId + " " + string.Join(" ", Keys);
}

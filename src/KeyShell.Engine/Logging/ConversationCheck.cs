using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;

namespace KeyShell.Engine.Logging;

/// <summary>
/// Checks a conversation log: every line is of the log's form; each client's replies come in the order
/// of its requests (FIFO) and answer the key asked; every request has its reply, or a fault line in its
/// place (a faulted request is accounted for, and listed in <see cref="FaultedRequests"/>). Given the
/// sequences that were sent, it also checks that each client's keys appear in exactly that order.
/// </summary>
public sealed class ConversationCheck
{
    private const string ReplyPrefix = "Response for the key ";

    private const int MaxProblems = 1000; // a broken log of millions of lines reports the first thousand

    private ConversationCheck(string? path, long requests, long replies, long faults, IReadOnlyDictionary<string, long> repliesByClient, IReadOnlyList<FaultedRequest> faulted, IReadOnlyList<string> problems)
    {
        Path = path;
        Clients = repliesByClient.Count;
        Requests = requests;
        Replies = replies;
        Faults = faults;
        RepliesByClient = repliesByClient;
        FaultedRequests = faulted;
        Problems = problems;
    }

    public string? Path { get; }

    public bool IsValid => Problems.Count == 0;

    public int Clients { get; }

    public long Requests { get; }

    public long Replies { get; }

    /// <summary>Fault lines in the log: faults on requests, and Refuse faults at accept.</summary>
    public long Faults { get; }

    /// <summary>The requests a fault took, in the order of their fault lines: accounted for, not unanswered.</summary>
    public IReadOnlyList<FaultedRequest> FaultedRequests { get; }

    /// <summary>Replies logged for each client (error replies included).</summary>
    public IReadOnlyDictionary<string, long> RepliesByClient { get; }

    /// <summary>What is wrong, one sentence each, with line numbers.</summary>
    public IReadOnlyList<string> Problems { get; }

    /// <summary>Reads a log file (while a server may still be writing it) into entries.</summary>
    public static IEnumerable<(int LineNumber, string Line, ConversationEntry? Entry)> Read(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        using var reader = new StreamReader(stream, Encoding.UTF8);
        var number = 0;
        string? line;
        while ((line = reader.ReadLine()) is not null)
        {
            number++;
            yield return (number, line, ConversationEntry.Parse(line, number));
        }
    }

    /// <summary>Checks the log at <paramref name="path"/>; <paramref name="expected"/> maps each client id to
    /// the keys it sent, in order (null to check pairing and FIFO only).</summary>
    public static ConversationCheck Verify(string path, IReadOnlyDictionary<string, IReadOnlyList<string>>? expected = null) =>
        Verify(Read(path), expected, path);

    public static ConversationCheck Verify(
        IEnumerable<(int LineNumber, string Line, ConversationEntry? Entry)> lines,
        IReadOnlyDictionary<string, IReadOnlyList<string>>? expected = null,
        string? path = null)
    {
        var problems = new List<string>();
        var pairing = new ExchangePairing(keepHistory: false);
        var faulted = new List<FaultedRequest>();
        var sent = new Dictionary<string, List<string>>(StringComparer.Ordinal); // only when there is something to compare
        var repliesByClient = new Dictionary<string, long>(StringComparer.Ordinal);
        long requests = 0, replies = 0, faults = 0;
        void Problem(string text)
        {
            if (problems.Count < MaxProblems)
            {
                problems.Add(text);
            }
        }
        foreach (var (number, line, entry) in lines)
        {
            if (entry is null)
            {
                if (line.Length > 0)
                {
                    Problem($"Line {number} is not a conversation line: '{Shorten(line)}'.");
                }

                continue;
            }

            if (entry.Source == ConversationLine.Client)
            {
                requests++;
                if (pairing.Request(entry) is not null && expected is not null && expected.ContainsKey(entry.ClientId!))
                {
                    GetOrAdd(sent, entry.ClientId!).Add(entry.Key!);
                }
            }
            else if (entry.Source == ConversationLine.Server)
            {
                replies++;
                if (entry.ClientId is not null)
                {
                    repliesByClient[entry.ClientId] = (repliesByClient.TryGetValue(entry.ClientId, out var count) ? count : 0) + 1;
                }

                switch (pairing.Reply(entry, out var exchange))
                {
                    case Pairing.NoRequest:
                        Problem($"Line {number}: a reply to client {entry.ClientId} with no request waiting for it.");
                        break;
                    case Pairing.Paired when entry.Reply!.StartsWith(ReplyPrefix, StringComparison.Ordinal) &&
                                             !entry.Reply.StartsWith(ReplyPrefix + LoggedKey(exchange!.Request) + " :", StringComparison.Ordinal):
                        Problem($"Line {number}: client {entry.ClientId} got '{entry.Reply}' for key {exchange.Key} (line {exchange.Request.LineNumber}): out of order or wrong.");
                        break;
                }
            }
            else if (entry is ConversationFault fault)
            {
                faults++;
                if (fault.Connection is not null)
                {
                    continue; // a Refuse: a connection closed at accept, no request to account for
                }

                switch (pairing.Fault(fault, out var exchange))
                {
                    case Pairing.NoRequest:
                        Problem($"Line {number}: a fault ({fault.Fault}) on client {fault.ClientId}'s key {fault.Key} with no request waiting for it.");
                        break;
                    case Pairing.OtherKey:
                        Problem($"Line {number}: a fault ({fault.Fault}) on client {fault.ClientId}'s key {fault.Key}, but its oldest request waiting is key {exchange!.Key} (line {exchange.Request.LineNumber}): out of order or wrong.");
                        break;
                    case Pairing.Paired:
                        faulted.Add(new FaultedRequest(exchange!));
                        break;
                }
            }
        }

        // A request a Delay or Slice took is accounted for by its fault line even when its reply never came
        // (the client may have left during the hold); any other request still waiting has no reply.
        foreach (var waiting in pairing.StillWaiting().Where(e => e.Fault is null).OrderBy(e => e.Request.LineNumber))
        {
            Problem($"Line {waiting.Request.LineNumber}: client {waiting.ClientId}'s key {waiting.Key} has no reply.");
        }

        if (expected is not null)
        {
            foreach (var pair in expected)
            {
                var actual = sent.TryGetValue(pair.Key, out var keys) ? keys : new List<string>();
                if (!actual.SequenceEqual(pair.Value, StringComparer.Ordinal))
                {
                    Problem($"Client {pair.Key} sent [{string.Join(" ", pair.Value)}] but the log shows [{string.Join(" ", actual)}].");
                }
            }
        }

        return new ConversationCheck(path, requests, replies, faults, repliesByClient, faulted, problems);
    }

    /// <summary>A request's key as its line has it: escaped as the reply that names it is (<c>a\\b</c>).</summary>
    private static string LoggedKey(ConversationEntry request) => request.Text.Substring(request.Text.IndexOf(' ') + 1);

    private static T GetOrAdd<T>(Dictionary<string, T> map, string key)
        where T : new()
    {
        if (!map.TryGetValue(key, out var value))
        {
            map[key] = value = new T();
        }

        return value;
    }

    private static string Shorten(string line) => line.Length <= 80 ? line : line.Substring(0, 77) + "...";
}

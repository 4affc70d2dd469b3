using OpenTelemetry;
using OpenTelemetry.Metrics;
using static KeyShell.Engine.Tests.TestSupport;

namespace KeyShell.Engine.Tests;

/// <summary>The KeyShell.Server meter read by OpenTelemetry's SDK as it is: AddMeter, an exporter, a flush.</summary>
public class OpenTelemetryTests
{
    [Fact]
    public void OpenTelemetryExportsTheRequestsCounterWithItsSumAndTags()
    {
        var exported = new List<Metric>();
        using var provider = Sdk.CreateMeterProviderBuilder()
            .AddMeter("KeyShell.Server")
            .AddInMemoryExporter(exported)
            .Build();
        using var server = StartServer(o => o.LogPath = null);
        using (var client = Connect(server.Port))
        {
            Send(client, "1 1\n1 2\n1 x\n1 3\n");
            Assert.Equal(4, ReadLines(client, 4).Length);
        }

        Eventually(() => server.ActiveConnections == 0, "the connection closed");
        Assert.True(provider.ForceFlush((int)Bound.TotalMilliseconds));

        var points = ExportedPoints(exported, "keyshell.requests", server.Port);
        Assert.Equal(3, points.Single(p => Equals(p.Tags["keyshell.outcome"], "ok")).Sum);
        Assert.Equal(1, points.Single(p => Equals(p.Tags["keyshell.outcome"], "error")).Sum);
        Assert.All(points, p => Assert.Equal("127.0.0.1", p.Tags["server.address"]));
        Assert.Equal(server.Requests, points.Sum(p => p.Sum));

        var connections = ExportedPoints(exported, "keyshell.connections", server.Port);
        Assert.Equal(1, connections.Single().Sum);
        var durations = exported.Where(m => m.Name == "keyshell.connection.duration").ToList();
        Assert.NotEmpty(durations);
        Assert.Equal("s", durations[0].Unit);
    }

    /// <summary>The long sums of one exported metric's points for one server port, with their tags.</summary>
    private static List<(long Sum, Dictionary<string, object?> Tags)> ExportedPoints(List<Metric> exported, string name, int port)
    {
        var points = new List<(long, Dictionary<string, object?>)>();
        // The last export holds the cumulative sums (a periodic export may have come before the flush).
        foreach (var metric in exported.Where(m => m.Name == name).TakeLast(1))
        {
            foreach (ref readonly var point in metric.GetMetricPoints())
            {
                var tags = new Dictionary<string, object?>();
                foreach (var tag in point.Tags)
                {
                    tags[tag.Key] = tag.Value;
                }

                if (Equals(tags.GetValueOrDefault("server.port"), port))
                {
                    points.Add((point.GetSumLong(), tags));
                }
            }
        }

        return points;
    }
}

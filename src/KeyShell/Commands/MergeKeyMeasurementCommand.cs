using System;
using System.Collections.Generic;
using System.Management.Automation;
using KeyShell.Engine.Client;

namespace KeyShell.Commands;

/// <summary>
/// Merges Measure-KeyServer results from several generators (machines, jobs, remoting), live or
/// deserialized, into one: sums, the rate over the joint window, percentiles from the merged histogram.
/// </summary>
[Cmdlet(VerbsData.Merge, "KeyMeasurement")]
[OutputType(typeof(LoadResult))]
public sealed class MergeKeyMeasurementCommand : KeyShellCmdlet
{
    private readonly List<LoadResult> _results = new();

    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true)]
    [ValidateNotNull]
    public PSObject[] InputObject { get; set; } = Array.Empty<PSObject>();

    /// <summary>Merges results of different targets or modes all the same.</summary>
    [Parameter]
    public SwitchParameter Force { get; set; }

    protected override void ProcessRecord()
    {
        foreach (var input in InputObject)
        {
            _results.Add(LoadResultReader.ReadOrStop(this, input));
        }
    }

    protected override void EndProcessing()
    {
        if (_results.Count == 0)
        {
            return;
        }

        if (LoadResultMerge.Mismatch(_results) is { } mismatch)
        {
            if (!Force)
            {
                ThrowTerminatingError(new ErrorRecord(
                    new InvalidOperationException($"The results measured different {mismatch}. Merge them with -Force if that is what you mean."),
                    ErrorIds.MeasurementMismatch, ErrorCategory.InvalidData, _results.ToArray()));
            }

            WriteWarning($"Merging results of different {mismatch}: the merged result shows the first one's target and mode.");
        }

        WriteObject(LoadResultMerge.Merge(_results));
    }
}

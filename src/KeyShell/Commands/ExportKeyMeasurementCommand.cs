using System;
using System.Collections.Generic;
using System.IO;
using System.Management.Automation;
using System.Runtime.InteropServices;
using System.Text;
using KeyShell.Engine.Client;

namespace KeyShell.Commands;

/// <summary>
/// Writes Measure-KeyServer results to a file, in the format its extension names: .hgrm (HdrHistogram's
/// percentile distribution), .csv, .json, or a picture (.png, .svg) of the latency by percentile and the
/// per-second timeline, one line per result piped in.
/// </summary>
[Cmdlet(VerbsData.Export, "KeyMeasurement", SupportsShouldProcess = true)]
[OutputType(typeof(FileInfo))]
public sealed class ExportKeyMeasurementCommand : KeyShellCmdlet
{
    private readonly List<LoadResult> _results = new();

    [Parameter(Mandatory = true, Position = 0)]
    [ValidateNotNullOrEmpty]
    public string Path { get; set; } = string.Empty;

    [Parameter(Mandatory = true, ValueFromPipeline = true)]
    [ValidateNotNull]
    public PSObject[] InputObject { get; set; } = Array.Empty<PSObject>();

    /// <summary>.hgrm: the latencies from the time each request was sent, instead of from the time it was due.</summary>
    [Parameter]
    public SwitchParameter Uncorrected { get; set; }

    /// <summary>.png and .svg: the picture's width in pixels.</summary>
    [Parameter]
    [ValidateRange(300, 10_000)]
    public int Width { get; set; } = 1200;

    /// <summary>.png and .svg: the picture's height in pixels.</summary>
    [Parameter]
    [ValidateRange(300, 10_000)]
    public int Height { get; set; } = 900;

    /// <summary>Refuses to replace an existing file.</summary>
    [Parameter]
    public SwitchParameter NoClobber { get; set; }

    /// <summary>Returns the file written.</summary>
    [Parameter]
    public SwitchParameter PassThru { get; set; }

    protected override void BeginProcessing()
    {
        var extension = System.IO.Path.GetExtension(Path).ToLowerInvariant();
        if (Array.IndexOf(new[] { ".hgrm", ".csv", ".json", ".png", ".svg" }, extension) < 0)
        {
            ThrowTerminatingError(new ErrorRecord(
                new ArgumentException($"Export-KeyMeasurement writes .hgrm, .csv, .json, .png or .svg files; '{Path}' has {(extension.Length == 0 ? "no extension" : $"the extension '{extension}'")}."),
                ErrorIds.UnsupportedExportFormat, ErrorCategory.InvalidArgument, Path));
        }

        if ((extension == ".png" || extension == ".svg") && !PictureWriter.IsSupported(out var why))
        {
            ThrowTerminatingError(new ErrorRecord(new PlatformNotSupportedException(why), ErrorIds.PictureNotSupported, ErrorCategory.NotImplemented, Path));
        }
    }

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

        var path = ResolvePath(Path);
        var extension = System.IO.Path.GetExtension(path).ToLowerInvariant();
        if (extension == ".hgrm" && _results.Count > 1)
        {
            ThrowTerminatingError(new ErrorRecord(
                new ArgumentException($"A .hgrm file holds one histogram, and {_results.Count} results were given: merge them first (Merge-KeyMeasurement), or export each to its own file."),
                ErrorIds.OneHistogramPerFile, ErrorCategory.InvalidArgument, Path));
        }

        if (NoClobber && File.Exists(path))
        {
            ThrowTerminatingError(new ErrorRecord(new IOException($"The file '{path}' exists, and -NoClobber was given."), ErrorIds.ExportFileExists, ErrorCategory.ResourceExists, Path));
        }

        if (!ShouldProcess(path, $"Export {_results.Count} measurement(s) as {extension}"))
        {
            return;
        }

        try
        {
            switch (extension)
            {
                case ".png":
                case ".svg":
                    PictureWriter.Write(path, extension == ".svg", Width, Height, _results);
                    break;
                default:
                    using (var writer = new StreamWriter(path, append: false, new UTF8Encoding(encoderShouldEmitUTF8Identifier: false)))
                    {
                        WriteText(writer, extension);
                    }

                    break;
            }
        }
        catch (Exception e) when (e is IOException || e is UnauthorizedAccessException)
        {
            ThrowTerminatingError(new ErrorRecord(new IOException($"Cannot write '{path}': {e.Message}", e), ErrorIds.ExportPathUnwritable, ErrorCategory.WriteError, Path));
        }
        catch (Exception e) when (e is DllNotFoundException || e is TypeInitializationException || e is BadImageFormatException)
        {
            ThrowTerminatingError(new ErrorRecord(new PlatformNotSupportedException($"The picture cannot be drawn on this machine ({RuntimeInformation.OSDescription}, {RuntimeInformation.ProcessArchitecture}): {e.Message} Export .hgrm, .csv or .json here, or the picture on Linux, macOS or Windows (x64; Linux also arm64).", e), ErrorIds.PictureNotSupported, ErrorCategory.NotImplemented, Path));
        }

        if (PassThru)
        {
            WriteObject(new FileInfo(path));
        }
    }

    private void WriteText(TextWriter writer, string extension)
    {
        switch (extension)
        {
            case ".hgrm":
                LoadExport.WriteHgrm(_results[0], writer, Uncorrected);
                break;
            case ".csv":
                LoadExport.WriteCsv(_results, writer);
                break;
            default:
                LoadExport.WriteJson(_results, writer);
                break;
        }
    }
}

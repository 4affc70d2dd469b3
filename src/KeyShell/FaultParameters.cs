using System;
using System.Management.Automation;
using KeyShell.Engine.Faults;

namespace KeyShell;

/// <summary>-Fault and -FaultSeed (Start-KeyServer, Set-KeyServer) into a fault set; a terminating
/// InvalidFault error for -Fault $null or a $null among the faults.</summary>
internal static class FaultParameters
{
    public static FaultSet Read(PSCmdlet cmdlet, bool bound, KeyFault[]? faults, int seed)
    {
        if (bound && (faults is null || Array.IndexOf(faults, null) >= 0))
        {
            cmdlet.ThrowTerminatingError(new ErrorRecord(
                new PSArgumentException("-Fault takes faults made by New-KeyFault, none of them $null; @() for none."),
                ErrorIds.InvalidFault,
                ErrorCategory.InvalidArgument,
                faults));
        }

        return faults is null || faults.Length == 0
            ? (seed == 0 ? FaultSet.Empty : new FaultSet(Array.Empty<KeyFault>(), seed))
            : new FaultSet(faults, seed);
    }
}

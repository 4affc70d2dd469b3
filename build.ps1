<#
.SYNOPSIS
    Builds, tests, demonstrates and measures KeyShell.

.DESCRIPTION
    The one entry point for every task. It runs on the PowerShell pinned by the repository's tool
    manifest, so a machine with only the .NET SDK needs nothing else:

        dotnet tool restore
        dotnet pwsh ./build.ps1 -Task Test

    Tasks:
      Build   (default) Compiles the solution (warnings are errors) and assembles the importable module
              in out/KeyShell, help included: Import-Module ./out/KeyShell/KeyShell.psd1.
      Docs    Turns docs/*.md into the module's help (en-US/KeyShell.dll-Help.xml, about_KeyShell);
              Build runs it too.
      Test    Build, then the xunit engine tests twice, against the engine's net8.0 build (PowerShell 7's)
              and its netstandard2.0 build (Windows PowerShell 5.1's), and the Pester module tests (in a child
              pwsh, so no DLL stays locked). Prints each run's counts, why each skipped test was skipped, and
              'N passed, N failed, N skipped' for all of them; exits non-zero when anything failed. With
              -Repeat N it builds once and runs the whole suite N times, with each run's time and counts, then
              lists every test that failed in any run and in how many runs (to catch a test that fails now
              and then).
      Install Build, then copies out/KeyShell to the current user's module folder (the user scope of
              $env:PSModulePath: ~/.local/share/powershell/Modules, or $XDG_DATA_HOME/powershell/Modules, on
              Linux and macOS; Documents/PowerShell/Modules on Windows) as KeyShell/<version>, replacing a copy
              of the same version. Then `Import-Module KeyShell` works in any new pwsh.
      Demo    Build, then the seed's session: a server on port 8080 (or a free port when 8080 is taken),
              the seed's three client sequences in parallel, the conversation as the seed's two consoles
              show it, the FIFO check of the log, and a clean stop. Exits non-zero if anything was wrong.
      Package Build, then out/KeyShell.<version>.nupkg, installable with Install-PSResource or
              Save-PSResource from a local file repository.
      Bench   Build, then the benchmark: KeyShell (log on and off) and memcached driven by the same load
              generator (keyload) in one run, -Rounds alternating rounds (3), medians; memory per idle connection
              and over 1,000,000 requests; Invoke-KeyClient against keyload; TLS rows (KeyShell with a
              certificate against memcached -Z, keyload -t). Table, and JSON in out/bench. Installs nothing
              but OpenSSL's headers for keyload -t: without memcached on PATH it measures KeyShell alone.
      Soak    Build, then -Minutes of mixed load (PerMessage, Persistent, garbage) on one logging server:
              errors beyond the garbage's, the server's memory over time, whether the log is complete.
      Fuzz    Instruments the engine with SharpFuzz and runs afl++ over the framing, parsing and log
              code for -Minutes (needs afl-fuzz: the Debian package afl++). New crashes are copied to
              tests/KeyShell.Fuzz/regressions, which the xunit suite replays.
      Clean   Removes out/ and every bin/ and obj/ folder.

.PARAMETER Task
    What to do: Build, Docs, Test, Install, Demo, Bench, Soak, Package, Fuzz or Clean. Build is the default.

.PARAMETER Minutes
    How long Fuzz and Soak run.

.PARAMETER Rounds
    How many alternating rounds Bench runs (3 by default). On a shared, noisy machine more rounds give
    steadier medians; each round adds about a minute here.

.PARAMETER Configuration
    The .NET build configuration, Release by default.

.PARAMETER Baseline
    Bench: another build's module manifest (for example out/KeyShell/KeyShell.psd1 of a clone at the previous
    commit) to measure beside this build, in the same rounds, alternating; the tables then show KS/baseline.

.PARAMETER TestFilter
    Runs only the tests whose name contains this text (xunit and Pester alike).

.PARAMETER Repeat
    How many times Test runs the whole suite (1 by default), building once. At the end it lists every test
    that failed in any run, with how many times.

.PARAMETER NoBuild
    Install copies the module already built in out/KeyShell instead of building first (the Pester test of
    Install uses it, as its suite runs on that very build).

.EXAMPLE
    dotnet pwsh ./build.ps1

    Builds the module into out/KeyShell.

.EXAMPLE
    dotnet pwsh ./build.ps1 -Task Test

    Runs every test and prints 'N passed, N failed'.

.EXAMPLE
    dotnet pwsh ./build.ps1 -Task Test -Repeat 5

    Builds once, runs every test five times, and names each test that failed in any run.

.EXAMPLE
    dotnet pwsh ./build.ps1 -Task Install

    Builds and installs the module for the current user: then `Import-Module KeyShell` in any new pwsh.

.EXAMPLE
    dotnet pwsh ./build.ps1 -Task Package

    Makes out/KeyShell.<version>.nupkg.

.EXAMPLE
    dotnet pwsh ./build.ps1 -Task Demo

    Runs the seed's session end to end against a fresh build.
#>
[CmdletBinding()]
param(
    [ValidateSet('Build', 'Docs', 'Test', 'Install', 'Demo', 'Bench', 'Soak', 'Package', 'Fuzz', 'Clean')]
    [string] $Task = 'Build',

    [ValidateRange(1, 1440)]
    [int] $Minutes = 10,

    [ValidateRange(1, 99)]
    [int] $Rounds = 3,

    [ValidateSet('Debug', 'Release')]
    [string] $Configuration = 'Release',

    [string] $TestFilter,

    [string] $Baseline,

    [ValidateRange(1, 100)]
    [int] $Repeat = 1,

    [switch] $NoBuild
)

Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'

$Root = $PSScriptRoot
$Out = Join-Path $Root 'out'
$ModuleOut = Join-Path $Out 'KeyShell'
$ResultsDir = Join-Path $Out 'test-results'

# Runs dotnet and stops the build when it fails.
# (A simple function: $args passes every dotnet switch through unbound, -v included.)
function Invoke-Dotnet {
    & dotnet @args | Out-Host
    if ($LASTEXITCODE -ne 0) { throw "dotnet $($args -join ' ') failed with exit code $LASTEXITCODE." }
}

# The pwsh this script runs on, started as a child process (the tool manifest's, under `dotnet pwsh`).
function Get-ChildPwsh {
    $name = if ($IsWindows) { 'pwsh.exe' } else { 'pwsh' }
    Join-Path $PSHOME $name
}

function Get-Version {
    ([xml](Get-Content -Raw (Join-Path $Root 'Directory.Build.props'))).Project.PropertyGroup.Version | Where-Object { $_ } | Select-Object -First 1
}

function Invoke-Build {
    Invoke-Dotnet build (Join-Path $Root 'KeyShell.sln') -c $Configuration --nologo -v quiet
    $engine = Join-Path $Root 'src/KeyShell.Engine'
    $staging = Join-Path $Out 'staging'
    Invoke-Dotnet publish $engine -c $Configuration -f net8.0 -o (Join-Path $staging 'Core') --nologo -v quiet
    Invoke-Dotnet publish $engine -c $Configuration -f netstandard2.0 -o (Join-Path $staging 'Desktop') --nologo -v quiet
    # Export-KeyMeasurement's pictures: PowerShell 7 only, with SkiaSharp's native library for the platforms
    # PowerShell 7 mostly runs on (all of SkiaSharp's would add 150 MB to the module).
    Invoke-Dotnet publish (Join-Path $Root 'src/KeyShell.Plot') -c $Configuration -f net8.0 -o (Join-Path $staging 'Plot') --nologo -v quiet

    if (Test-Path $ModuleOut) { Remove-Item $ModuleOut -Recurse -Force }
    $null = New-Item -ItemType Directory -Force -Path $ModuleOut
    Copy-Item (Join-Path $Root "src/KeyShell/bin/$Configuration/netstandard2.0/KeyShell.dll") $ModuleOut
    Copy-Item (Join-Path $Root 'module/KeyShell/*') $ModuleOut -Recurse
    Copy-Item (Join-Path $Root 'LICENSE') $ModuleOut # the manifest's MIT license travels with the module and its package
    foreach ($edition in 'Core', 'Desktop') {
        $target = Join-Path $ModuleOut "Dependencies/$edition"
        $null = New-Item -ItemType Directory -Force -Path $target
        Copy-Item (Join-Path $staging "$edition/*.dll") $target
    }
    $core = Join-Path $ModuleOut 'Dependencies/Core'
    Copy-Item (Join-Path $staging 'Plot/*.dll') $core
    foreach ($runtime in 'linux-x64', 'linux-arm64', 'osx', 'win-x64') {
        $native = Join-Path $core "runtimes/$runtime/native"
        $null = New-Item -ItemType Directory -Force -Path $native
        Copy-Item (Join-Path $staging "Plot/runtimes/$runtime/native/*") $native
    }

    $manifest = Join-Path $ModuleOut 'KeyShell.psd1'
    $version = Get-Version
    (Get-Content -Raw $manifest) -replace "ModuleVersion\s*=\s*'[^']*'", "ModuleVersion        = '$version'" |
        Set-Content -Path $manifest -NoNewline -Encoding utf8
    Invoke-Docs
    Write-Host "Built KeyShell $version in $ModuleOut"
}

# Help is generated in a child pwsh: it imports the built module, whose DLLs must not stay loaded here.
function Invoke-Docs {
    $script = "Import-Module '$ModuleOut/KeyShell.psd1'; Import-Module '$Root/src/Help/MarkdownHelp.psm1'; " +
        "Build-ModuleHelp -DocsPath '$Root/docs' -ModuleName KeyShell -OutputPath '$ModuleOut/en-US' -HelpFileName KeyShell.dll-Help.xml"
    & (Get-ChildPwsh) -NoProfile -NonInteractive -Command $script | Out-Host
    if ($LASTEXITCODE -ne 0) { throw "Building the help failed (exit code $LASTEXITCODE)." }
}

# The package is made by PSResourceGet itself (bundled with PowerShell 7.4+), publishing to a
# throw-away local repository, so it is exactly what Install-PSResource expects.
function Invoke-Package {
    Invoke-Build
    $null = New-Package
}

function New-Package {
    $version = Get-Version
    $repository = Join-Path $Out 'package-repository'
    if (Test-Path $repository) { Remove-Item $repository -Recurse -Force }
    $null = New-Item -ItemType Directory -Path $repository
    $name = 'KeyShellBuild' + [guid]::NewGuid().ToString('N').Substring(0, 8)
    $script = "Register-PSResourceRepository -Name $name -Uri '$repository' -Trusted; " +
        "try { Publish-PSResource -Path '$ModuleOut' -Repository $name -SkipDependenciesCheck } finally { Unregister-PSResourceRepository -Name $name }"
    & (Get-ChildPwsh) -NoProfile -NonInteractive -Command $script | Out-Host
    if ($LASTEXITCODE -ne 0) { throw "Packaging failed (exit code $LASTEXITCODE)." }
    $package = Join-Path $Out "KeyShell.$version.nupkg"
    Move-Item (Get-ChildItem $repository -Filter '*.nupkg' | Select-Object -First 1).FullName $package -Force
    Remove-Item $repository -Recurse -Force
    Write-Host "Packaged $package"
    $package
}

# Runs one xunit project; returns its counts, failed tests and skip reasons, read from the TRX file.
function Invoke-EngineTests {
    param([Parameter(Mandatory)] [string] $Project, [Parameter(Mandatory)] [string] $Name)
    $trx = Join-Path $ResultsDir "$(Split-Path $Project -Leaf).trx"
    Remove-Item $trx -ErrorAction Ignore
    $arguments = @('test', (Join-Path $Root $Project), '-c', $Configuration, '--no-build', '--nologo',
        '--logger', "trx;LogFileName=$trx", '--logger', 'console;verbosity=minimal')
    if ($TestFilter) { $arguments += @('--filter', "FullyQualifiedName~$TestFilter") }
    & dotnet @arguments | Out-Host
    $exitCode = $LASTEXITCODE
    if (-not (Test-Path $trx)) {
        Write-Warning "The xunit run ($Name) wrote no results."
        return [pscustomobject]@{ Name = $Name; Passed = 0; Failed = 1; Skipped = 0; FailedTests = @("$Name (no results, exit code $exitCode)"); SkippedTests = @() }
    }

    $run = ([xml](Get-Content -Raw $trx)).TestRun
    $counters = $run.ResultSummary.Counters
    # A filter that matches no test leaves a results file with no Results element.
    $results = @(if ($run.PSObject.Properties['Results'] -and $run.Results) { $run.Results.UnitTestResult })
    # Named with the run: the two engine runs share their tests' names.
    $failedTests = @($results | Where-Object outcome -In 'Failed', 'Error', 'Timeout' | ForEach-Object { "$Name $($_.testName)" })
    $failed = [int]$counters.failed + [int]$counters.error + [int]$counters.timeout
    if ($exitCode -ne 0 -and $failed -eq 0) {
        # A crashed test host can leave a results file that shows no failure.
        Write-Warning "dotnet test ($Name) exited with $exitCode; counting the run as failed."
        $failed = 1
        $failedTests += "$Name (the test host exited with $exitCode)"
    }
    $skippedTests = @($results | Where-Object outcome -EQ 'NotExecuted' | ForEach-Object {
            [pscustomobject]@{ Name = "$Name $($_.testName)"; Reason = $_.Output.ErrorInfo.Message }
        })
    # The counters leave skipped tests out (notExecuted stays 0): they are the results marked NotExecuted.
    [pscustomobject]@{
        Name = $Name; Passed = [int]$counters.passed; Failed = $failed; Skipped = $skippedTests.Count
        FailedTests = $failedTests; SkippedTests = $skippedTests
    }
}

# Runs Pester in a child pwsh, so the module's DLLs are never loaded into this process.
function Invoke-ModuleTests {
    param([string] $Package)
    Invoke-Dotnet restore (Join-Path $Root 'tests/Tools/Tools.csproj') --nologo -v quiet
    $packages = ((& dotnet nuget locals global-packages --list) -replace '^global-packages:\s*', '').Trim()
    $pester = Join-Path $packages 'pester/5.7.1/tools/Pester.psd1'
    # Read by the Pester tests: the package to install, and where NuGet keeps the test tools.
    $env:KEYSHELL_PACKAGE = $Package
    $env:KEYSHELL_NUGET_PACKAGES = $packages
    $summary = Join-Path $ResultsDir 'pester-summary.json'
    Remove-Item $summary -ErrorAction Ignore
    $runner = Join-Path $Root 'tests/KeyShell.Tests/Invoke-PesterSuite.ps1'
    & (Get-ChildPwsh) -NoProfile -NonInteractive -File $runner -PesterManifest $pester `
        -ModuleManifest (Join-Path $ModuleOut 'KeyShell.psd1') -ResultsDirectory $ResultsDir -Filter "$TestFilter" | Out-Host
    if (-not (Test-Path $summary)) {
        Write-Warning "The Pester run wrote no summary (exit code $LASTEXITCODE)."
        return [pscustomobject]@{ Name = 'Pester'; Passed = 0; Failed = 1; Skipped = 0; FailedTests = @("Pester (no summary, exit code $LASTEXITCODE)"); SkippedTests = @() }
    }

    $result = Get-Content -Raw $summary | ConvertFrom-Json
    $result.FailedTests = @($result.FailedTests | ForEach-Object { "Pester $_" })
    foreach ($skipped in $result.SkippedTests) { $skipped.Name = "Pester $($skipped.Name)" }
    $result | Add-Member -NotePropertyName Name -NotePropertyValue 'Pester' -PassThru
}

# One run of the whole suite: both engine builds under xunit, then the module under Pester.
function Invoke-TestRun {
    param([string] $Package)
    Invoke-EngineTests -Project 'tests/KeyShell.Engine.Tests' -Name 'xunit (net8.0 engine)'
    Invoke-EngineTests -Project 'tests/KeyShell.Engine.Tests.NetStandard' -Name 'xunit (netstandard2.0 engine)'
    Invoke-ModuleTests -Package $Package
}

function Invoke-Test {
    Invoke-Build
    $null = New-Item -ItemType Directory -Force -Path $ResultsDir
    $package = New-Package | Select-Object -Last 1
    $runs = foreach ($number in 1..$Repeat) {
        $watch = [System.Diagnostics.Stopwatch]::StartNew()
        $parts = @(Invoke-TestRun -Package $package)
        [pscustomobject]@{
            Number = $number; Elapsed = $watch.Elapsed; Parts = $parts
            Passed = ($parts | Measure-Object Passed -Sum).Sum; Failed = ($parts | Measure-Object Failed -Sum).Sum
            Skipped = ($parts | Measure-Object Skipped -Sum).Sum
        }
    }

    Write-Host ''
    foreach ($run in $runs) {
        if ($Repeat -gt 1) { Write-Host ("Run {0} of {1}, {2:m\m\ ss\s}: {3} passed, {4} failed, {5} skipped" -f $run.Number, $Repeat, $run.Elapsed, $run.Passed, $run.Failed, $run.Skipped) }
        foreach ($part in $run.Parts) {
            Write-Host ("{0}{1}: {2} passed, {3} failed, {4} skipped" -f $(if ($Repeat -gt 1) { '  ' }), $part.Name, $part.Passed, $part.Failed, $part.Skipped)
        }
    }

    $skipped = @($runs.Parts | ForEach-Object { $_.SkippedTests } | Where-Object { $_ } | Sort-Object Name, Reason -Unique)
    if ($skipped) {
        Write-Host 'Skipped:'
        $skipped | ForEach-Object { Write-Host "  $($_.Name): $($_.Reason)" }
    }

    $failedTests = @($runs.Parts | ForEach-Object { $_.FailedTests } | Where-Object { $_ })
    if ($failedTests) {
        Write-Host "Failed (in how many of $Repeat runs):" -ForegroundColor Red
        $failedTests | Group-Object | Sort-Object Count -Descending | ForEach-Object { Write-Host "  $($_.Name): $($_.Count)" -ForegroundColor Red }
    }
    elseif ($Repeat -gt 1) {
        Write-Host "No test failed in $Repeat runs."
    }

    $passed = ($runs | Measure-Object Passed -Sum).Sum
    $failed = ($runs | Measure-Object Failed -Sum).Sum
    Write-Host "$passed passed, $failed failed, $(($runs | Measure-Object Skipped -Sum).Sum) skipped"
    if ($failed -gt 0 -or $passed -eq 0) { exit 1 }
}

# The user scope of $env:PSModulePath, as PowerShell 7 computes it.
function Get-UserModulePath {
    if ($IsWindows) { return Join-Path ([Environment]::GetFolderPath('MyDocuments')) 'PowerShell/Modules' }
    $data = if ($env:XDG_DATA_HOME) { $env:XDG_DATA_HOME } else { Join-Path $HOME '.local/share' }
    Join-Path $data 'powershell/Modules'
}

function Invoke-Install {
    if (-not $NoBuild) { Invoke-Build }
    $manifest = Join-Path $ModuleOut 'KeyShell.psd1'
    if (-not (Test-Path $manifest)) { throw "There is no built module in ${ModuleOut}: run Install without -NoBuild." }
    $version = (Import-PowerShellDataFile $manifest).ModuleVersion
    $target = Join-Path (Get-UserModulePath) "KeyShell/$version"
    if (Test-Path $target) {
        try { Remove-Item $target -Recurse -Force -ErrorAction Stop }
        catch {
            throw "Could not replace $target ($($_.Exception.Message)). A PowerShell session that imported KeyShell $version " +
                'keeps its DLLs open on Windows: close it (or Remove-Module KeyShell there), then run Install again.'
        }
    }
    $null = New-Item -ItemType Directory -Force -Path $target
    Copy-Item (Join-Path $ModuleOut '*') $target -Recurse
    Write-Host "Installed KeyShell $version in $target"
    Write-Host 'Next, in any new pwsh: Import-Module KeyShell'
}

function Invoke-Demo {
    Invoke-Build
    $demo = Join-Path $Root 'docs/examples/Demo.ps1'
    & (Get-ChildPwsh) -NoProfile -NonInteractive -File $demo -ModuleManifest (Join-Path $ModuleOut 'KeyShell.psd1') -WorkingDirectory (Join-Path $Out 'demo')
    if ($LASTEXITCODE -ne 0) {
        Write-Host "Demo FAILED (exit code $LASTEXITCODE)." -ForegroundColor Red
        exit $LASTEXITCODE
    }
}

function Invoke-Fuzz {
    $afl = Get-Command afl-fuzz -CommandType Application -ErrorAction Ignore | Select-Object -First 1
    if (-not $afl) { throw 'Fuzz needs afl-fuzz on PATH: install the Debian package afl++ (apt-get install afl++).' }
    $fuzzOut = Join-Path $Out 'fuzz'
    $bin = Join-Path $fuzzOut 'bin'
    $findings = Join-Path $fuzzOut 'findings'
    Invoke-Dotnet tool restore
    if (Test-Path $bin) { Remove-Item $bin -Recurse -Force } # sharpfuzz instruments in place, once
    Invoke-Dotnet publish (Join-Path $Root 'tests/KeyShell.Fuzz') -c Release -o $bin --nologo -v quiet
    Invoke-Dotnet sharpfuzz (Join-Path $bin 'KeyShell.Engine.dll')
    if (Test-Path $findings) { Remove-Item $findings -Recurse -Force }

    # afl++ runs a .NET program through SharpFuzz's forkserver: no binary check, no UI, a fixed duration.
    $env:AFL_SKIP_BIN_CHECK = '1'; $env:AFL_NO_UI = '1'; $env:AFL_SKIP_CPUFREQ = '1'
    $env:AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES = '1'; $env:AFL_NO_AFFINITY = '1'
    & $afl.Source -i (Join-Path $Root 'tests/KeyShell.Fuzz/corpus') -o $findings -t 5000 -m none -V ($Minutes * 60) -- (Join-Path $bin 'KeyShell.Fuzz') | Out-Host

    $stats = @{}
    foreach ($line in Get-Content (Join-Path $findings 'default/fuzzer_stats') -ErrorAction Ignore) {
        if ($line -match '^(\w+)\s*:\s*(.*)$') { $stats[$Matches[1]] = $Matches[2].Trim() }
    }
    $crashes = @(Get-ChildItem (Join-Path $findings 'default/crashes') -File -ErrorAction Ignore | Where-Object Name -NE 'README.txt')
    foreach ($crash in $crashes) {
        Copy-Item $crash.FullName (Join-Path $Root "tests/KeyShell.Fuzz/regressions/crash-$((Get-FileHash $crash.FullName).Hash.Substring(0, 12))")
    }
    Write-Host "Fuzzed $Minutes min: $($stats.execs_done) executions, $($stats.corpus_count) inputs in the corpus, $($stats.edges_found) edges, $($crashes.Count) crashes, $($stats.saved_hangs) hangs."
    if ($crashes.Count) { Write-Host 'Crashes were copied to tests/KeyShell.Fuzz/regressions: the xunit suite now replays them.' }
}

function Invoke-Bench {
    Invoke-Build
    $script = Join-Path $Root 'tests/KeyShell.Bench/Invoke-Benchmark.ps1'
    & (Get-ChildPwsh) -NoProfile -NonInteractive -File $script -ModuleManifest (Join-Path $ModuleOut 'KeyShell.psd1') -Root $Root -OutDirectory (Join-Path $Out 'bench') -Rounds $Rounds `
        -Baseline $(if ($Baseline) { (Resolve-Path $Baseline).Path } else { '' })
    if ($LASTEXITCODE -ne 0) { throw "The benchmark failed (exit code $LASTEXITCODE)." }
}

function Invoke-Soak {
    Invoke-Build
    $script = Join-Path $Root 'tests/KeyShell.Bench/Invoke-Soak.ps1'
    & (Get-ChildPwsh) -NoProfile -NonInteractive -File $script -ModuleManifest (Join-Path $ModuleOut 'KeyShell.psd1') -OutDirectory (Join-Path $Out 'soak') -Minutes $Minutes
    if ($LASTEXITCODE -ne 0) { throw "The soak found problems (exit code $LASTEXITCODE)." }
}

function Invoke-Clean {
    if (Test-Path $Out) { Remove-Item $Out -Recurse -Force }
    Get-ChildItem $Root -Directory -Recurse -Include bin, obj | Remove-Item -Recurse -Force
    Write-Host 'Cleaned.'
}

Push-Location $Root
try {
    switch ($Task) {
        'Build' { Invoke-Build }
        'Docs' { Invoke-Docs }
        'Package' { Invoke-Package }
        'Fuzz' { Invoke-Fuzz }
        'Bench' { Invoke-Bench }
        'Soak' { Invoke-Soak }
        'Test' { Invoke-Test }
        'Install' { Invoke-Install }
        'Demo' { Invoke-Demo }
        'Clean' { Invoke-Clean }
    }
}
finally {
    Pop-Location
}

BeforeAll {
    Import-Module $env:KEYSHELL_MODULE -Force
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    $script:Server = Start-KeyServer -Port 0 -NoLog
    $script:Folder = New-TestDirectory
    # Errors in it (key 9 is not in the map), so that the files carry every kind of count.
    $script:Mapped = Start-KeyServer -Port 0 -NoLog -KeyMap @{ '0' = 1; '1' = 2; '2' = 3; '3' = 4; '4' = 5; '5' = 6; '6' = 7; '7' = 8; '8' = 9 }
    $script:Result = Measure-KeyServer -Port $Mapped.Port -Duration 2 -Concurrency 2 -WarningAction SilentlyContinue

    function Read-BigEndian([byte[]] $Bytes, [int] $At) { ([int]$Bytes[$At] -shl 24) -bor ([int]$Bytes[$At + 1] -shl 16) -bor ([int]$Bytes[$At + 2] -shl 8) -bor [int]$Bytes[$At + 3] }

    # Decodes a PNG as a viewer would: signature, chunks, the header, the pixel rows inflated.
    function Read-Png([string] $Path) {
        $bytes = [System.IO.File]::ReadAllBytes($Path)
        $signature = [byte[]](0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A)
        [System.Linq.Enumerable]::SequenceEqual([byte[]]$bytes[0..7], $signature) | Should -BeTrue -Because 'a PNG starts with its signature'
        $at = 8; $data = [System.IO.MemoryStream]::new(); $header = $null; $chunks = @()
        while ($at -lt $bytes.Length) {
            $length = Read-BigEndian $bytes $at
            $type = [System.Text.Encoding]::ASCII.GetString($bytes, $at + 4, 4)
            $chunks += $type
            if ($type -eq 'IHDR') {
                $header = [pscustomobject]@{
                    Width     = Read-BigEndian $bytes ($at + 8)
                    Height    = Read-BigEndian $bytes ($at + 12)
                    BitDepth  = $bytes[$at + 16]
                    ColorType = $bytes[$at + 17]
                }
            }
            if ($type -eq 'IDAT') { $data.Write($bytes, $at + 8, $length) }
            $at += 12 + $length
        }
        $chunks[0] | Should -Be 'IHDR'
        $chunks[-1] | Should -Be 'IEND'
        $data.Position = 0
        $inflated = [System.IO.MemoryStream]::new()
        ([System.IO.Compression.ZLibStream]::new($data, [System.IO.Compression.CompressionMode]::Decompress)).CopyTo($inflated)
        $channels = @{ 0 = 1; 2 = 3; 4 = 2; 6 = 4 }[[int]$header.ColorType]
        $stride = 1 + $header.Width * $channels * $header.BitDepth / 8
        $pixels = $inflated.ToArray()
        $pixels.Length | Should -Be ($header.Height * $stride) -Because 'every row of the header''s size is there'
        @(0..($header.Height - 1) | Where-Object { $pixels[$_ * $stride] -gt 4 }) | Should -BeNullOrEmpty -Because 'each row starts with a PNG filter type'
        $header | Add-Member Distinct ([System.Collections.Generic.HashSet[byte]]::new([byte[]]$pixels).Count) -PassThru
    }
}

AfterAll { Get-KeyServer | Stop-KeyServer }

Describe 'Export-KeyMeasurement' {
    It 'writes HdrHistogram''s percentile distribution (.hgrm), whose total count is the successes' {
        $file = Join-Path $Folder 'run.hgrm'
        $Result | Export-KeyMeasurement -Path $file
        $lines = Get-Content $file
        $lines[0] | Should -Match '^\s*Value\s+Percentile\s+TotalCount\s+1/\(1-Percentile\)$'
        $rows = $lines | Where-Object { $_ -match '^\s*[\d.]+\s+[\d.]+\s+\d+' } | ForEach-Object {
            $fields = $_.Trim() -split '\s+'
            [pscustomobject]@{ Value = [double]::Parse($fields[0], [cultureinfo]::InvariantCulture); Percentile = [double]::Parse($fields[1], [cultureinfo]::InvariantCulture); TotalCount = [long]$fields[2] }
        }
        $footer = ($lines | Where-Object { $_ -like '#*' }) -join "`n"
        $footer | Should -Match '#\[Mean\s+=\s+[\d.]+, StdDeviation\s+=\s+[\d.]+\]'
        $footer -match '#\[Max\s+=\s+([\d.]+), Total count\s+=\s+(\d+)\]' | Should -BeTrue -Because 'the footer has the #[Max line'
        $total = [long]$Matches[2]
        $successes = $Result.Requests - $Result.Errors
        $total | Should -Be $successes
        $rows[-1].TotalCount | Should -Be $successes
        $rows[-1].Percentile | Should -Be 1
        [double]::Parse($Matches[1], [cultureinfo]::InvariantCulture) | Should -BeGreaterOrEqual ($Result.Max.TotalMilliseconds * 0.999) -Because 'values are in milliseconds'
        $footer | Should -Match '#\[Buckets\s+=\s+\d+, SubBuckets\s+=\s+\d+\]'
    }

    It 'writes a .csv that Import-Csv reads back, numbers as milliseconds and enums as names, and that merges again' {
        $file = Join-Path $Folder 'run.csv'
        $Result | Export-KeyMeasurement -Path $file
        $row = Import-Csv $file
        $row.Connection | Should -Be 'Persistent'
        $row.Framing | Should -Be 'Line'
        [long]$row.Requests | Should -Be $Result.Requests
        [long]$row.ErrorReply | Should -Be $Result.ErrorReply
        $row.ErrorReply | Should -BeGreaterThan 0
        [double]::Parse($row.P99, [cultureinfo]::InvariantCulture) | Should -Be $Result.P99.TotalMilliseconds
        [double]::Parse($row.P9999, [cultureinfo]::InvariantCulture) | Should -Be $Result.P9999.TotalMilliseconds
        [datetime]::Parse($row.StartTime, [cultureinfo]::InvariantCulture, 'RoundtripKind').ToUniversalTime() | Should -Be $Result.StartTime
        $row.Rate | Should -BeNullOrEmpty
        $row.Keys | Should -Be '0 1 2 3 4 5 6 7 8 9'
        $back = $row | Merge-KeyMeasurement
        foreach ($name in 'Requests', 'Errors', 'ErrorReply', 'P50', 'P99', 'P999', 'Max', 'Mean', 'StartTime', 'EndTime', 'Concurrency') { $back.$name | Should -Be $Result.$name -Because "$name round-trips" }
        $again = Join-Path $Folder 'again.csv'
        $back | Export-KeyMeasurement -Path $again
        (Get-Content $again) | Should -Be (Get-Content $file) -Because 'what is read back exports the same'
    }

    It 'writes a .json that ConvertFrom-Json reads back, with the timeline and the distribution' {
        $file = Join-Path $Folder 'run.json'
        $Result | Export-KeyMeasurement -Path $file
        $json = @(Get-Content -Raw $file | ConvertFrom-Json)
        $json.Count | Should -Be 1
        $json[0].Connection | Should -Be 'Persistent'
        $json[0].P99 | Should -Be $Result.P99.TotalMilliseconds
        $json[0].P99 | Should -BeOfType [double]
        $json[0].Uncorrected.P99 | Should -Be $Result.Uncorrected.P99.TotalMilliseconds
        $json[0].Rate | Should -BeNullOrEmpty
        @($json[0].Timeline).Count | Should -Be $Result.Timeline.Count
        ($json[0].Timeline | Measure-Object Requests -Sum).Sum | Should -Be $Result.Requests
        $json[0].Distribution[-1].TotalCount | Should -Be ($Result.Requests - $Result.Errors)
        $back = $json | Merge-KeyMeasurement
        $back.P99 | Should -Be $Result.P99
        $back.Timeline.Count | Should -Be $Result.Timeline.Count
    }

    It 'draws a .png of the size asked that decodes as an image' {
        $file = Join-Path $Folder 'run.png'
        $second = Measure-KeyServer -Port $Server.Port -Duration 1 -Concurrency 2
        $Result, $second | Export-KeyMeasurement -Path $file -Width 1000 -Height 700
        $png = Read-Png $file
        $png.Width | Should -Be 1000
        $png.Height | Should -Be 700
        $png.Distinct | Should -BeGreaterThan 16 -Because 'lines and text, not a blank canvas'
    }

    It 'draws an .svg that is XML of the size asked' {
        $file = Join-Path $Folder 'run.svg'
        $item = $Result | Export-KeyMeasurement -Path $file -Width 800 -Height 600 -PassThru
        $item.FullName | Should -Be $file
        $svg = [xml](Get-Content -Raw $file)
        $svg.DocumentElement.LocalName | Should -Be 'svg'
        $svg.DocumentElement.width | Should -Be '800'
        $svg.DocumentElement.height | Should -Be '600'
        (Get-Content -Raw $file) | Should -Match 'Percentile'
    }

    It 'exports a result deserialized from a job' {
        $job = Start-Job -ScriptBlock { param($Module, $Port) Import-Module $Module; Measure-KeyServer -Port $Port -Count 3000 -Concurrency 2 } -ArgumentList $env:KEYSHELL_MODULE, $Server.Port
        try {
            $remote = $job | Wait-Job -Timeout 120 | Receive-Job
            $file = Join-Path $Folder 'remote.hgrm'
            $remote | Export-KeyMeasurement -Path $file
            (Get-Content -Raw $file) -match 'Total count\s+=\s+(\d+)' | Should -BeTrue
            [long]$Matches[1] | Should -Be 3000
        }
        finally { $job | Remove-Job -Force }
    }

    It 'refuses <Case> with <ErrorId>' -ForEach @(
        @{ Case = 'an unknown extension'; ErrorId = 'UnsupportedExportFormat'; Script = { $Result | Export-KeyMeasurement -Path (Join-Path $Folder 'run.txt') }; Target = 'run.txt' }
        @{ Case = 'two results in one .hgrm'; ErrorId = 'OneHistogramPerFile'; Script = { $Result, $Result | Export-KeyMeasurement -Path (Join-Path $Folder 'two.hgrm') }; Target = 'two.hgrm' }
        @{ Case = 'what is not a result'; ErrorId = 'InvalidMeasurement'; Script = { Get-Date | Export-KeyMeasurement -Path (Join-Path $Folder 'date.csv') }; Target = $null }
        @{ Case = 'an existing file with -NoClobber'; ErrorId = 'ExportFileExists'; Script = { $Result | Export-KeyMeasurement -Path (Join-Path $Folder 'run.hgrm') -NoClobber }; Target = 'run.hgrm' }
        @{ Case = 'a folder that does not exist'; ErrorId = 'ExportPathUnwritable'; Script = { $Result | Export-KeyMeasurement -Path (Join-Path $Folder 'none/run.csv') }; Target = 'run.csv' }
    ) {
        if ($Case -like '*NoClobber*') { $Result | Export-KeyMeasurement -Path (Join-Path $Folder 'run.hgrm') }
        $failure = $null
        try { & $Script } catch { $failure = $_ }
        $failure | Should -Not -BeNullOrEmpty
        $failure.FullyQualifiedErrorId | Should -Be "$ErrorId,KeyShell.Commands.ExportKeyMeasurementCommand"
        if ($Target) { "$($failure.TargetObject)" | Should -BeLike "*$Target" }
        $failure.Exception.Message | Should -Not -Match '\(Parameter '
    }
}

Describe 'The drawing library' {
    It 'is loaded only for a picture, into KeyShell''s private load context, never by a server or a load' {
        $picture = Join-Path $Folder 'context.png'
        $script = @"
Import-Module '$env:KEYSHELL_MODULE'
`$server = Start-KeyServer -Port 0 -NoLog
`$null = Invoke-KeyClient -Sequences '1 7' -Port `$server.Port
`$result = Measure-KeyServer -Port `$server.Port -Count 1000
`$server | Stop-KeyServer
`$drawing = 'KeyShell.Plot', 'ScottPlot', 'SkiaSharp'
`$before = @([AppDomain]::CurrentDomain.GetAssemblies() | Where-Object { `$_.GetName().Name -in `$drawing }).Count
`$result | Export-KeyMeasurement -Path '$picture'
`$loaded = [AppDomain]::CurrentDomain.GetAssemblies() | Where-Object { `$_.GetName().Name -in `$drawing }
`$contexts = `$loaded | ForEach-Object { [System.Runtime.Loader.AssemblyLoadContext]::GetLoadContext(`$_).GetType().Name } | Sort-Object -Unique
[pscustomobject]@{ Before = `$before; After = @(`$loaded).Count; Contexts = `$contexts -join ',' } | ConvertTo-Json -Compress
"@
        $json = & (Get-PwshPath) -NoProfile -NonInteractive -Command $script
        $LASTEXITCODE | Should -Be 0
        $found = $json | Select-Object -Last 1 | ConvertFrom-Json
        $found.Before | Should -Be 0 -Because 'a server, a client and a load need no drawing library'
        $found.After | Should -Be 3
        $found.Contexts | Should -Be 'DependencyLoadContext' -Because 'the picture''s assemblies load beside the engine, not into the default context'
        $picture | Should -Exist
    }
}

<#
    Turns docs/*.md into PowerShell help: MAML (<Module>.dll-Help.xml) for the cmdlets and a text about
    topic. platyPS is not obtainable here, so this is KeyShell's own converter, kept small: it reads the page
    shape of docs/ (## SYNOPSIS, DESCRIPTION, EXAMPLES, PARAMETERS, INPUTS, OUTPUTS, ERRORS, RELATED LINKS)
    and takes each command's syntax (parameter sets, positions, pipeline input, types) from the live cmdlet,
    so the syntax never drifts from the code.
#>

Set-StrictMode -Version Latest

$script:CommonParameters = [System.Management.Automation.Cmdlet]::CommonParameters + [System.Management.Automation.Cmdlet]::OptionalCommonParameters

# Splits text into paragraphs at blank lines; lines of one paragraph are joined with spaces.
function Split-Paragraph([string[]] $Lines) {
    $paragraphs = [System.Collections.Generic.List[string]]::new()
    $current = [System.Collections.Generic.List[string]]::new()
    foreach ($line in $Lines + '') {
        if ($line.Trim() -eq '') {
            if ($current.Count) { $paragraphs.Add(($current -join ' ').Trim()); $current.Clear() }
        }
        elseif ($line.TrimStart().StartsWith('|')) {
            # A table row becomes its own paragraph: "a - b - c"; the header rule is dropped.
            if ($current.Count) { $paragraphs.Add(($current -join ' ').Trim()); $current.Clear() }
            $cells = $line.Trim().Trim('|').Split('|') | ForEach-Object { $_.Trim() }
            if (-not ($cells -join '' -match '^[-: ]+$')) { $paragraphs.Add($cells -join ' - ') }
        }
        else { $current.Add($line.Trim()) }
    }
    , $paragraphs.ToArray()
}

<#
.SYNOPSIS
    Reads one help page into an object: Name, Synopsis, Description, Examples, Parameters, Inputs,
    Outputs, Errors, Links.
#>
function ConvertFrom-HelpMarkdown {
    [CmdletBinding()]
    param([Parameter(Mandatory, ValueFromPipeline)] [string] $Markdown)

    $lines = $Markdown -split "`r?`n"
    $page = [ordered]@{ Name = $null; Sections = [ordered]@{} }
    $section = $null; $subsection = $null; $fence = $null
    foreach ($line in $lines) {
        if ($null -ne $fence) {
            if ($line -match '^```\s*$') { $fence = $null } else { $subsection.Fences[-1].Lines.Add($line) }
            continue
        }
        if ($line -match '^# (.+)$') { $page.Name = $Matches[1].Trim(); continue }
        if ($line -match '^## (.+)$') {
            $section = [ordered]@{ Text = [System.Collections.Generic.List[string]]::new(); Items = [System.Collections.Generic.List[object]]::new() }
            $page.Sections[$Matches[1].Trim().ToUpperInvariant()] = $section
            $subsection = $null
            continue
        }
        if ($line -match '^### (.+)$' -and $section) {
            $subsection = [ordered]@{ Title = $Matches[1].Trim(); Text = [System.Collections.Generic.List[string]]::new(); Fences = [System.Collections.Generic.List[object]]::new() }
            $section.Items.Add($subsection)
            continue
        }
        if ($line -match '^```(\w*)\s*$' -and $subsection) {
            $fence = $Matches[1]
            $subsection.Fences.Add([ordered]@{ Language = $fence; Lines = [System.Collections.Generic.List[string]]::new() })
            continue
        }
        if ($subsection) { $subsection.Text.Add($line) } elseif ($section) { $section.Text.Add($line) }
    }

    $get = { param($name) if ($page.Sections.Contains($name)) { $page.Sections[$name] } }
    $items = { param($name) $s = & $get $name; if ($s) { $s.Items } else { @() } }
    [pscustomobject]@{
        Name        = $page.Name
        Synopsis    = (Split-Paragraph (& $get 'SYNOPSIS').Text) -join ' '
        Description = Split-Paragraph (& $get 'DESCRIPTION').Text
        Examples    = @(foreach ($example in & $items 'EXAMPLES') {
                [pscustomobject]@{
                    Title   = $example.Title
                    Code    = ($example.Fences | Where-Object Language -In 'powershell', 'ps1', '' | ForEach-Object { $_.Lines -join "`n" }) -join "`n"
                    Remarks = Split-Paragraph $example.Text
                }
            })
        Parameters  = @(foreach ($parameter in & $items 'PARAMETERS') {
                $yaml = [ordered]@{}
                foreach ($fence in $parameter.Fences | Where-Object Language -EQ 'yaml') {
                    foreach ($entry in $fence.Lines) { if ($entry -match '^\s*([^:]+):\s*(.*)$') { $yaml[$Matches[1].Trim()] = $Matches[2].Trim() } }
                }
                [pscustomobject]@{
                    Name         = $parameter.Title.TrimStart('-')
                    Description  = Split-Paragraph $parameter.Text
                    Type         = $yaml['Type']
                    Required     = $yaml['Required']
                    Position     = $yaml['Position']
                    DefaultValue = $yaml['Default value']
                    Pipeline     = $yaml['Accept pipeline input']
                }
            })
        # "Also every parameter of [Start-KeyServer](Start-KeyServer.md) ..." in the PARAMETERS section: the
        # command takes that command's parameters, documented on its page (see Get-DocumentedParameter).
        ParametersFrom = $(if ((& $get 'PARAMETERS') -and ((& $get 'PARAMETERS').Text -join ' ') -match 'every parameter of \[([^\]]+)\]') { $Matches[1] })
        Inputs      = @(foreach ($item in & $items 'INPUTS') { [pscustomobject]@{ Type = $item.Title; Description = Split-Paragraph $item.Text } })
        Outputs     = @(foreach ($item in & $items 'OUTPUTS') { [pscustomobject]@{ Type = $item.Title; Description = Split-Paragraph $item.Text } })
        Errors      = if (& $get 'ERRORS') { Split-Paragraph (& $get 'ERRORS').Text } else { @() }
        Links       = @(foreach ($line in (& $get 'RELATED LINKS').Text) { if ($line -match '\[([^\]]+)\]') { $Matches[1] } })
    }
}

<#
.SYNOPSIS
    A page's parameters, and those it takes from the page its PARAMETERS section names ("every parameter of
    [Other-Command]"), where it does not document them itself.
#>
function Get-DocumentedParameter {
    [CmdletBinding()]
    param([Parameter(Mandatory)] $Page, [object[]] $Pages = @())
    $own = @($Page.Parameters)
    $own
    if ($Page.ParametersFrom) {
        $source = $Pages | Where-Object Name -EQ $Page.ParametersFrom | Select-Object -First 1
        if (-not $source) { throw "The page of $($Page.Name) takes its parameters from $($Page.ParametersFrom), which has no page." }
        $source.Parameters | Where-Object Name -NotIn $own.Name
    }
}

function Write-Paragraphs([System.Xml.XmlWriter] $Writer, [string[]] $Paragraphs) {
    $Writer.WriteStartElement('maml', 'description', $script:Maml)
    foreach ($paragraph in $Paragraphs) { $Writer.WriteElementString('maml', 'para', $script:Maml, $paragraph) }
    $Writer.WriteEndElement()
}

function Get-PipelineInput([System.Management.Automation.ParameterMetadata] $Parameter) {
    $kinds = @(foreach ($set in $Parameter.ParameterSets.Values) {
            if ($set.ValueFromPipeline) { 'ByValue' }
            if ($set.ValueFromPipelineByPropertyName) { 'ByPropertyName' }
        }) | Select-Object -Unique
    if ($kinds) { "True ($($kinds -join ', '))" } else { 'False' }
}

function Write-Parameter([System.Xml.XmlWriter] $Writer, [string] $Name, $Metadata, $SetMetadata, $Doc) {
    $Writer.WriteStartElement('command', 'parameter', $script:Command)
    $Writer.WriteAttributeString('required', $(if ($SetMetadata -and $SetMetadata.IsMandatory) { 'true' } else { 'false' }))
    $Writer.WriteAttributeString('variableLength', 'true')
    $Writer.WriteAttributeString('globbing', 'false')
    $Writer.WriteAttributeString('pipelineInput', (Get-PipelineInput $Metadata))
    $position = if ($SetMetadata -and $SetMetadata.Position -ge 0) { [string]$SetMetadata.Position } else { 'named' }
    $Writer.WriteAttributeString('position', $position)
    $Writer.WriteAttributeString('aliases', $(if ($Metadata.Aliases.Count) { $Metadata.Aliases -join ', ' } else { 'none' }))
    $Writer.WriteElementString('maml', 'name', $script:Maml, $Name)
    Write-Paragraphs $Writer $(if ($Doc) { $Doc.Description } else { @() })
    $typeName = $Metadata.ParameterType.Name
    if ($typeName -ne 'SwitchParameter') {
        $Writer.WriteStartElement('command', 'parameterValue', $script:Command)
        $Writer.WriteAttributeString('required', 'true')
        $Writer.WriteAttributeString('variableLength', 'false')
        $Writer.WriteString($typeName)
        $Writer.WriteEndElement()
    }
    $Writer.WriteStartElement('dev', 'type', $script:Dev)
    $Writer.WriteElementString('maml', 'name', $script:Maml, $Metadata.ParameterType.FullName)
    $Writer.WriteEndElement()
    $Writer.WriteElementString('dev', 'defaultValue', $script:Dev, $(if ($Doc -and $Doc.DefaultValue) { $Doc.DefaultValue } else { 'None' }))
    $Writer.WriteEndElement()
}

function Write-TypeList([System.Xml.XmlWriter] $Writer, [string] $List, [string] $Item, $Types) {
    $Writer.WriteStartElement('command', $List, $script:Command)
    foreach ($type in $Types) {
        $Writer.WriteStartElement('command', $Item, $script:Command)
        $Writer.WriteStartElement('dev', 'type', $script:Dev)
        $Writer.WriteElementString('maml', 'name', $script:Maml, $type.Type)
        $Writer.WriteEndElement()
        Write-Paragraphs $Writer $type.Description
        $Writer.WriteEndElement()
    }
    $Writer.WriteEndElement()
}

$script:Maml = 'http://schemas.microsoft.com/maml/2004/10'
$script:Command = 'http://schemas.microsoft.com/maml/dev/command/2004/10'
$script:Dev = 'http://schemas.microsoft.com/maml/dev/2004/10'

<#
.SYNOPSIS
    Writes the MAML of the given pages, with each command's syntax taken from its CommandInfo.
#>
function ConvertTo-Maml {
    [CmdletBinding()]
    param(
        [Parameter(Mandatory)] [object[]] $Page,
        [Parameter(Mandatory)] [hashtable] $Command
    )

    $settings = [System.Xml.XmlWriterSettings]@{ Indent = $true; Encoding = [System.Text.UTF8Encoding]::new($false) }
    $text = [System.Text.StringBuilder]::new()
    $writer = [System.Xml.XmlWriter]::Create($text, $settings)
    $writer.WriteStartElement('helpItems', 'http://msh')
    $writer.WriteAttributeString('schema', 'maml')
    foreach ($doc in $Page) {
        $info = $Command[$doc.Name]
        if (-not $info) { throw "No command named '$($doc.Name)' for the help page." }
        $writer.WriteStartElement('command', 'command', $script:Command)
        $writer.WriteAttributeString('xmlns', 'maml', $null, $script:Maml)
        $writer.WriteAttributeString('xmlns', 'dev', $null, $script:Dev)
        $writer.WriteStartElement('command', 'details', $script:Command)
        $writer.WriteElementString('command', 'name', $script:Command, $info.Name)
        $writer.WriteElementString('command', 'verb', $script:Command, $info.Verb) # functions have Verb and Noun too
        $writer.WriteElementString('command', 'noun', $script:Command, $info.Noun)
        Write-Paragraphs $writer @($doc.Synopsis)
        $writer.WriteEndElement()
        Write-Paragraphs $writer $doc.Description

        $docParameters = @{}
        foreach ($parameter in Get-DocumentedParameter -Page $doc -Pages $Page) { $docParameters[$parameter.Name] = $parameter }
        $writer.WriteStartElement('command', 'syntax', $script:Command)
        foreach ($set in $info.ParameterSets) {
            $writer.WriteStartElement('command', 'syntaxItem', $script:Command)
            $writer.WriteElementString('maml', 'name', $script:Maml, $info.Name)
            foreach ($parameter in $set.Parameters | Where-Object Name -NotIn $script:CommonParameters) {
                Write-Parameter $writer $parameter.Name $info.Parameters[$parameter.Name] $parameter $docParameters[$parameter.Name]
            }
            $writer.WriteEndElement()
        }
        $writer.WriteEndElement()

        $writer.WriteStartElement('command', 'parameters', $script:Command)
        # PSBase: a cmdlet with a parameter named Keys (Measure-KeyServer -Keys) would give that parameter, not the names.
        foreach ($name in $info.Parameters.PSBase.Keys | Where-Object { $_ -notin $script:CommonParameters }) {
            $metadata = $info.Parameters[$name]
            $firstSet = @($metadata.ParameterSets.Values)[0]
            $setInfo = [pscustomobject]@{ IsMandatory = $firstSet.IsMandatory; Position = $firstSet.Position }
            Write-Parameter $writer $name $metadata $setInfo $docParameters[$name]
        }
        $writer.WriteEndElement()

        Write-TypeList $writer 'inputTypes' 'inputType' $doc.Inputs
        Write-TypeList $writer 'returnValues' 'returnValue' $doc.Outputs

        $writer.WriteStartElement('maml', 'alertSet', $script:Maml)
        $writer.WriteStartElement('maml', 'alert', $script:Maml)
        $errors = if ($doc.Errors.Count) { @('Errors (ErrorId - Category - When):') + $doc.Errors } else { @() }
        foreach ($paragraph in $errors) { $writer.WriteElementString('maml', 'para', $script:Maml, $paragraph) }
        $writer.WriteEndElement()
        $writer.WriteEndElement()

        $writer.WriteStartElement('command', 'examples', $script:Command)
        foreach ($example in $doc.Examples) {
            $writer.WriteStartElement('command', 'example', $script:Command)
            $writer.WriteElementString('maml', 'title', $script:Maml, "-------------------------- $($example.Title) --------------------------")
            $writer.WriteElementString('dev', 'code', $script:Dev, $example.Code)
            $writer.WriteStartElement('dev', 'remarks', $script:Dev)
            foreach ($paragraph in $example.Remarks) { $writer.WriteElementString('maml', 'para', $script:Maml, $paragraph) }
            $writer.WriteEndElement()
            $writer.WriteEndElement()
        }
        $writer.WriteEndElement()

        $writer.WriteStartElement('command', 'relatedLinks', $script:Command)
        foreach ($link in $doc.Links) {
            $writer.WriteStartElement('maml', 'navigationLink', $script:Maml)
            $writer.WriteElementString('maml', 'linkText', $script:Maml, $link)
            $writer.WriteEndElement()
        }
        $writer.WriteEndElement()
        $writer.WriteEndElement()
    }
    $writer.WriteEndElement()
    $writer.Flush()
    $text.ToString() -replace 'encoding="utf-16"', 'encoding="utf-8"'
}

<#
.SYNOPSIS
    Turns an about_*.md page into the text of an about_*.help.txt topic.
#>
function ConvertTo-AboutText {
    [CmdletBinding()]
    param([Parameter(Mandatory)] [string] $Markdown)
    $out = foreach ($line in $Markdown -split "`r?`n") {
        if ($line -match '^# (.+)$') { "TOPIC`n    $($Matches[1].Trim())"; continue }
        if ($line -match '^## (.+)$') { "`n$($Matches[1].Trim().ToUpperInvariant())"; continue }
        if ($line -match '^### (.+)$') { "`n  $($Matches[1].Trim().ToUpperInvariant())"; continue }
        if ($line -match '^```') { continue }
        if ($line.Trim() -eq '') { ''; continue }
        "    $line" -replace '`', ''
    }
    ($out -join "`n").Trim() + "`n"
}

<#
.SYNOPSIS
    Builds a module's help from a docs folder: en-US/<Assembly>-Help.xml and the about topics.
#>
function Build-ModuleHelp {
    [CmdletBinding()]
    param(
        [Parameter(Mandatory)] [string] $DocsPath,
        [Parameter(Mandatory)] [string] $ModuleName,
        [Parameter(Mandatory)] [string] $OutputPath,
        [Parameter(Mandatory)] [string] $HelpFileName
    )

    $commands = @{}
    # Functions too (Use-KeyServer): their comment '# .ExternalHelp <HelpFileName>' points Get-Help here.
    foreach ($info in Get-Command -Module $ModuleName -CommandType Cmdlet, Function) { $commands[$info.Name] = $info }
    $pages = foreach ($file in Get-ChildItem $DocsPath -Filter '*.md' | Where-Object { $commands.ContainsKey($_.BaseName) }) {
        ConvertFrom-HelpMarkdown -Markdown (Get-Content -Raw $file.FullName)
    }
    $null = New-Item -ItemType Directory -Force -Path $OutputPath
    Set-Content -Path (Join-Path $OutputPath $HelpFileName) -Value (ConvertTo-Maml -Page $pages -Command $commands) -Encoding utf8
    foreach ($about in Get-ChildItem $DocsPath -Filter 'about_*.md') {
        Set-Content -Path (Join-Path $OutputPath "$($about.BaseName).help.txt") -Value (ConvertTo-AboutText -Markdown (Get-Content -Raw $about.FullName)) -Encoding utf8
    }
}

Export-ModuleMember -Function ConvertFrom-HelpMarkdown, Get-DocumentedParameter, ConvertTo-Maml, ConvertTo-AboutText, Build-ModuleHelp

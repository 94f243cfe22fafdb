#Requires -RunAsAdministrator
<#
.SYNOPSIS
    Installs the rxinject NDIS lightweight filter on a Windows TEST machine.

.DESCRIPTION
    Run from the driver package folder (rxinject.inf, rxinject.sys, rxinject.cat and, from the
    eWDK build, WDRLocalTestCert.cer), in an elevated PowerShell:

        .\install.ps1                  # package signed by `cargo make` (eWDK)
        .\install.ps1 -Sign            # package built on Linux (dist\x64): sign it here first

    Steps: (1) test signing must be on (-EnableTestSigning turns it on; a reboot follows);
    (2) the test certificate goes into LocalMachine\Root and \TrustedPublisher; (3) netcfg
    installs the filter (component RX_RxInject), which binds it to every Ethernet adapter;
    (4) the binding, the service and the control device are checked.

    NEVER RUN: this script was written on Linux, where no part of it can run. See
    docs/WINDOWS-TESTING.md.
#>
[CmdletBinding()]
param(
    # The folder holding rxinject.inf and rxinject.sys.
    [string]$Package = $PSScriptRoot,
    # Turn test signing on (bcdedit) and stop: reboot, then run the script again.
    [switch]$EnableTestSigning,
    # Create a test certificate, a catalog (inf2cat) and sign the .sys and .cat (signtool);
    # needs the WDK tools on PATH (an eWDK prompt).
    [switch]$Sign
)

$ErrorActionPreference = 'Stop'
$ComponentId = 'RX_RxInject'        # rxinject_abi::COMPONENT_ID, the INF's hardware id
$ServiceName = 'rxinject'           # rxinject_abi::SERVICE_NAME, the INF's AddService name
$CertName    = 'WDRLocalTestCert'   # the eWDK flow's test certificate (CN)

function Step($text) { Write-Host "==> $text" -ForegroundColor Cyan }

$inf = Join-Path $Package 'rxinject.inf'
$sys = Join-Path $Package 'rxinject.sys'
foreach ($f in @($inf, $sys)) {
    if (-not (Test-Path $f)) { throw "$f is missing: run this script from the driver package folder" }
}

# (1) Test signing.
$testsigning = (bcdedit /enum '{current}') -match 'testsigning\s+Yes'
if (-not $testsigning) {
    if ($EnableTestSigning) {
        Step 'turning test signing on (bcdedit /set testsigning on)'
        bcdedit /set testsigning on | Out-Null
        Write-Warning 'Reboot, then run this script again (without -EnableTestSigning).'
        exit 0
    }
    throw 'Test signing is off: run .\install.ps1 -EnableTestSigning, reboot, and run it again (Secure Boot must be off for test signing).'
}

# (2) The test certificate.
$cer = Join-Path $Package "$CertName.cer"
if ($Sign) {
    Step 'signing the package with a new test certificate'
    foreach ($tool in @('inf2cat.exe', 'signtool.exe')) {
        if (-not (Get-Command $tool -ErrorAction SilentlyContinue)) {
            throw "$tool is not on PATH: run from an eWDK prompt (LaunchBuildEnv.cmd), or sign on the build machine"
        }
    }
    $cert = New-SelfSignedCertificate -Type CodeSigningCert -Subject "CN=$CertName" `
        -CertStoreLocation Cert:\LocalMachine\My -HashAlgorithm SHA256
    Export-Certificate -Cert $cert -FilePath $cer | Out-Null
    inf2cat /driver:$Package /os:10_x64 /uselocaltime
    if ($LASTEXITCODE -ne 0) { throw "inf2cat failed ($LASTEXITCODE)" }
    foreach ($f in @($sys, (Join-Path $Package 'rxinject.cat'))) {
        signtool sign /v /sm /s My /n $CertName /fd SHA256 $f
        if ($LASTEXITCODE -ne 0) { throw "signtool sign $f failed ($LASTEXITCODE)" }
    }
}
if (-not (Test-Path $cer)) {
    throw "$cer is missing: use the package built by 'cargo make' (eWDK), or -Sign"
}
Step "trusting $cer (LocalMachine\Root and \TrustedPublisher)"
Import-Certificate -FilePath $cer -CertStoreLocation Cert:\LocalMachine\Root | Out-Null
Import-Certificate -FilePath $cer -CertStoreLocation Cert:\LocalMachine\TrustedPublisher | Out-Null

# (3) Install the filter: netcfg adds the network component and binds it.
Step "netcfg -v -l $inf -c s -i $ComponentId"
netcfg -v -l $inf -c s -i $ComponentId
if ($LASTEXITCODE -ne 0) { throw "netcfg failed ($LASTEXITCODE): see C:\Windows\INF\setupapi.dev.log" }

# (4) Check: bound to the Ethernet adapters, service running, control device present.
Step 'bindings'
$bindings = Get-NetAdapterBinding -ComponentID $ComponentId -ErrorAction SilentlyContinue
if (-not $bindings) { throw "no adapter is bound to $ComponentId (Get-NetAdapterBinding)" }
$bindings | Format-Table Name, DisplayName, Enabled -AutoSize
Step "service $ServiceName"
sc.exe query $ServiceName
$exe = Join-Path $Package 'rxinject.exe'
if (Test-Path $exe) {
    Step 'the control device, through rxinject.exe adapters'
    & $exe adapters
    if ($LASTEXITCODE -ne 0) { throw "rxinject.exe adapters failed ($LASTEXITCODE)" }
}
Step 'installed'

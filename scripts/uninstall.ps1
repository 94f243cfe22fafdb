#Requires -RunAsAdministrator
<#
.SYNOPSIS
    Removes the rxinject NDIS lightweight filter from a Windows test machine.

.DESCRIPTION
    netcfg -u unbinds the filter from every adapter and removes the network component (the
    driver unloads when its last module detaches); then the driver package is deleted from the
    driver store, and with -RemoveCertificate the test certificate is untrusted again.
    Close every rxinject.exe first: an open handle keeps the driver loaded until it closes.

    NEVER RUN: this script was written on Linux. See docs/WINDOWS-TESTING.md.
#>
[CmdletBinding()]
param(
    [switch]$RemoveCertificate,
    # Also turn test signing off (a reboot follows).
    [switch]$DisableTestSigning
)

$ErrorActionPreference = 'Stop'
$ComponentId = 'RX_RxInject'
$ServiceName = 'rxinject'
$CertName    = 'WDRLocalTestCert'

function Step($text) { Write-Host "==> $text" -ForegroundColor Cyan }

Step "netcfg -u $ComponentId"
netcfg -u $ComponentId
if ($LASTEXITCODE -ne 0) { Write-Warning "netcfg -u returned $LASTEXITCODE (not installed?)" }

# The driver store keeps the package (oemNN.inf) after netcfg -u.
Step 'driver store'
$published = pnputil /enum-drivers | Out-String
foreach ($block in ($published -split "(\r?\n){2,}")) {
    if ($block -match 'Original Name:\s+rxinject\.inf' -and $block -match 'Published Name:\s+(oem\d+\.inf)') {
        Step "pnputil /delete-driver $($Matches[1]) /uninstall"
        pnputil /delete-driver $Matches[1] /uninstall
    }
}

if (Get-Service $ServiceName -ErrorAction SilentlyContinue) {
    Write-Warning "the $ServiceName service is still registered: a reboot finishes the removal"
}

if ($RemoveCertificate) {
    Step "untrusting CN=$CertName"
    foreach ($store in @('Root', 'TrustedPublisher', 'My')) {
        Get-ChildItem "Cert:\LocalMachine\$store" | Where-Object Subject -eq "CN=$CertName" | Remove-Item
    }
}
if ($DisableTestSigning) {
    Step 'bcdedit /set testsigning off (reboot to apply)'
    bcdedit /set testsigning off | Out-Null
}
Step 'removed'

@echo off
rem posnet ostend-05 windows/swiftpos-netpos-backoffice-undo.cmd: generated, do not edit.
rem Removes what windows/swiftpos-netpos-backoffice-enable-https.cmd added: SwiftPOS NetPOS.Net back to HTTP on backoffice, port 10101.
rem Run from an elevated command prompt (Run as administrator). Safe to run again.
setlocal

net session >nul 2>&1
if errorlevel 1 goto not_elevated

echo posnet ostend-05: removing the HTTPS setup of SwiftPOS NetPOS.Net on port 10101.
echo Maintenance window: Monday 02:00-04:00.

netsh http delete sslcert ipport=0.0.0.0:10101
if errorlevel 1 echo posnet: no certificate binding on 0.0.0.0:10101 - nothing to remove.
netsh http delete urlacl url=https://+:10101/
if errorlevel 1 echo posnet: no URL reservation for https://+:10101/ - nothing to remove.
netsh advfirewall firewall delete rule name="posnet swiftpos-netpos-backoffice"
if errorlevel 1 echo posnet: no firewall rule posnet swiftpos-netpos-backoffice - nothing to remove.

echo Stop NetPOS.Net, untick Use SSL in General Settings, then start it again.
echo On each SwiftPOS Touch terminal (touch1 198.51.100.11, touch2 198.51.100.12): untick Secured,
echo then click Refresh Interface List.
exit /b 0

:not_elevated
echo posnet: this script must run elevated. Right-click Command Prompt, Run as administrator.
exit /b 1

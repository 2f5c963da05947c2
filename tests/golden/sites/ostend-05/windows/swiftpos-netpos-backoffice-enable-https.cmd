@echo off
rem posnet ostend-05 windows/swiftpos-netpos-backoffice-enable-https.cmd: generated, do not edit.
rem SwiftPOS NetPOS.Net over HTTPS on backoffice (198.51.100.5), port 10101.
rem Run from an elevated command prompt (Run as administrator). Safe to run again:
rem every reservation, binding and firewall rule is deleted before it is added.
rem Exit codes: 0 done, 1 not elevated, 2 certificate missing, 3 urlacl, 4 sslcert, 5 firewall.
setlocal

net session >nul 2>&1
if errorlevel 1 goto not_elevated

echo posnet ostend-05: enabling HTTPS for SwiftPOS NetPOS.Net on port 10101.
echo Maintenance window: Monday 02:00-04:00. Clients cannot connect until each one is switched to HTTPS.
echo Done before this script? NetPOS.Net stopped (right-click the tray icon, Stop),
echo and Use SSL ticked (tray icon, General Settings, tick Use SSL, Save and Close).
echo.

rem The certificate (with its private key) must be in Local Computer, Personal.
rem certutil exits with a negative HRESULT on failure: test both signs.
certutil -store My 00000000000012d9cd34315bb56d78c08da59000 >nul 2>&1
if errorlevel 1 goto no_cert
if not errorlevel 0 goto no_cert

rem URL reservation with an SDDL: user=EVERYONE fails on non-English Windows.
netsh http delete urlacl url=https://+:10101/ >nul 2>&1
netsh http add urlacl url=https://+:10101/ sddl=D:(A;;GX;;;WD)
if errorlevel 1 goto fail_urlacl

rem Certificate binding on the SAME port as the reservation.
netsh http delete sslcert ipport=0.0.0.0:10101 >nul 2>&1
netsh http add sslcert ipport=0.0.0.0:10101 certhash=00000000000012d9cd34315bb56d78c08da59000 appid={77ba29fd-9f7a-45b0-8d7e-1ee5d879951b}
if errorlevel 1 goto fail_sslcert

rem Windows Firewall: only the client terminals may connect.
netsh advfirewall firewall delete rule name="posnet swiftpos-netpos-backoffice" >nul 2>&1
netsh advfirewall firewall add rule name="posnet swiftpos-netpos-backoffice" dir=in action=allow protocol=TCP localport=10101 remoteip=198.51.100.11,198.51.100.12
if errorlevel 1 goto fail_firewall

netsh http show urlacl url=https://+:10101/
netsh http show sslcert ipport=0.0.0.0:10101
echo posnet ostend-05: HTTPS reservation, certificate binding and firewall rule are in place.
echo Now start NetPOS.Net (right-click the tray icon, Start).
echo On each SwiftPOS Touch terminal (touch1 198.51.100.11, touch2 198.51.100.12): open the settings form, Customers,
echo tick Secured, click Refresh Interface List, then OK; verify with a member lookup.
echo To undo: run windows/swiftpos-netpos-backoffice-undo.cmd elevated.
exit /b 0

:not_elevated
echo posnet: this script must run elevated. Right-click Command Prompt, Run as administrator.
exit /b 1

:no_cert
echo posnet: certificate 00000000000012d9cd34315bb56d78c08da59000 is not in Local Computer, Personal (certlm.msc).
echo Install the trusted certificate with its private key first; a self-signed one cannot be used.
exit /b 2

:fail_urlacl
echo posnet: netsh http add urlacl failed for https://+:10101/ (see the message above).
exit /b 3

:fail_sslcert
echo posnet: netsh http add sslcert failed for 0.0.0.0:10101 (see the message above).
echo Check the thumbprint 00000000000012d9cd34315bb56d78c08da59000 and that the certificate has its private key.
exit /b 4

:fail_firewall
echo posnet: adding the Windows Firewall rule posnet swiftpos-netpos-backoffice failed (see the message above).
exit /b 5

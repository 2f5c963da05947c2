"""An independent TLS scan (sslyze) of a rendered proxy against Mozilla's intermediate
profile, run inside a lab namespace:

    python -m tests.lab.tls_scan NAME PORT ADDRESS CA_FILE

NAME is sent as SNI (the proxy's server name), ADDRESS is where it is reached, CA_FILE
the lab certificate the scan trusts (the lab's certificates are self-signed; every other
check is sslyze's own). Prints one JSON object: the profile version sslyze checks, the
issues it found (empty when compliant), the TLS versions the server accepted, and
whether the scan completed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

VERSIONS = {
    "ssl_2_0_cipher_suites": "SSLv2",
    "ssl_3_0_cipher_suites": "SSLv3",
    "tls_1_0_cipher_suites": "TLSv1.0",
    "tls_1_1_cipher_suites": "TLSv1.1",
    "tls_1_2_cipher_suites": "TLSv1.2",
    "tls_1_3_cipher_suites": "TLSv1.3",
}


def scannable_certificate(folder: Path, name: str) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for `name` that a strict (web PKI) path validation
    accepts: CA with critical basicConstraints and keyUsage, a leaf with serverAuth.
    Returns (CA certificate, certificate, key)."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2"]
    ca, ca_key = folder / "scan-ca.crt", folder / "scan-ca.key"
    crt, key, csr, ext = (folder / f"scan-server.{x}" for x in ("crt", "key", "csr", "ext"))
    ca_ext = ["basicConstraints=critical,CA:TRUE", "keyUsage=critical,keyCertSign,cRLSign"]
    ext.write_text(
        f"subjectAltName=DNS:{name}\nbasicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
    )
    addext = ["-subj", "/CN=posnet scan CA", *(a for e in ca_ext for a in ("-addext", e))]
    sign = ["-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-days", "2", "-extfile", ext]
    for args in (
        ["req", "-x509", *ec, "-keyout", ca_key, "-out", ca, *addext],
        ["req", "-new", *ec[:-2], "-keyout", key, "-out", csr, "-subj", f"/CN={name}"],
        ["x509", "-req", "-in", csr, "-out", crt, *sign],
    ):
        subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True)
    return ca, crt, key


def scan(name: str, port: int, address: str, ca_file: Path) -> dict[str, object]:
    # sslyze only where a scan runs (the certificate helper above needs none).
    from sslyze import (
        CertificateInfoExtraArgument,
        ScanCommandsExtraArguments,
        Scanner,
        ServerNetworkLocation,
        ServerScanRequest,
        ServerScanStatusEnum,
    )
    from sslyze.mozilla_tls_profile.tls_config_checker import (
        SCAN_COMMANDS_NEEDED_BY_MOZILLA_CHECKER,
        MozillaTlsConfiguration,
        ServerNotCompliantWithTlsConfiguration,
        TlsConfigurationEnum,
        check_server_against_tls_configuration,
    )

    request = ServerScanRequest(
        server_location=ServerNetworkLocation(hostname=name, port=port, ip_address=address),
        scan_commands=SCAN_COMMANDS_NEEDED_BY_MOZILLA_CHECKER,
        scan_commands_extra_arguments=ScanCommandsExtraArguments(
            certificate_info=CertificateInfoExtraArgument(custom_ca_file=ca_file)
        ),
    )
    scanner = Scanner()
    scanner.queue_scans([request])
    (result,) = list(scanner.get_results())
    if result.scan_status != ServerScanStatusEnum.COMPLETED or result.scan_result is None:
        return {"completed": False, "error": str(result.connectivity_error_trace)}
    accepted = []
    for attr, version in VERSIONS.items():
        attempt = getattr(result.scan_result, attr)
        if attempt.result is not None and attempt.result.accepted_cipher_suites:
            accepted.append(version)
    config = MozillaTlsConfiguration.get(TlsConfigurationEnum.MOZILLA_INTERMEDIATE)
    issues: dict[str, str] = {}
    try:
        check_server_against_tls_configuration(result, config)
    except ServerNotCompliantWithTlsConfiguration as exc:
        issues = exc.issues
    return {"completed": True, "issues": issues, "accepted": accepted}


def main(argv: list[str]) -> int:
    name, port, address, ca_file = argv
    print(json.dumps(scan(name, int(port), address, Path(ca_file)), sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

"""The lab's own certificate authority (``lab up``, scenarios 1 and 2), made with ``openssl``.

Everything lives in the lab's run directory and goes with ``lab down``:

* ``ca.pem`` / ``ca.key``: a self-signed CA (EC P-256, 30 days), the file a client trusts
  (``curl --cacert``; ``lab status --json`` gives it as ``ca_file``);
* ``<isp>-pvd-info.pem`` / ``.key``: a server certificate per ISP signed by that CA, for the
  ISP's PvD ID only (subjectAltName ``DNS:<PvD ID>``, extendedKeyUsage serverAuth).

The openssl configurations are written next to them, so nothing depends on the system's
``openssl.cnf``.
"""
from __future__ import annotations

import secrets
import subprocess
from pathlib import Path

from pvdrun.lab.errors import LabError

DAYS = "30"
CA_CERT = "ca.pem"
CA_KEY = "ca.key"

_CA_CONFIG = """[req]
distinguished_name = dn
prompt = no
x509_extensions = v3_ca
[dn]
CN = {cn}
[v3_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
"""

_SERVER_CONFIG = """[req]
distinguished_name = dn
prompt = no
[dn]
CN = {name}
[v3_server]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:{name}
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""

_NEW_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


def _openssl(openssl: str, args: list[str]) -> None:
    done = subprocess.run([openssl, *args], capture_output=True, text=True, check=False,
                          timeout=30)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["failed"])[-1]
        raise LabError(f"openssl {args[0]}: {last}")


def make_ca(openssl: str, directory: Path, lab_name: str) -> Path:
    """Create the lab's CA in ``directory``; the CA certificate's path."""
    config = directory / "ca.cnf"
    config.write_text(_CA_CONFIG.format(cn=f"pvdrun lab {lab_name} CA"), encoding="ascii")
    cert = directory / CA_CERT
    _openssl(openssl, ["req", "-x509", "-config", str(config), *_NEW_KEY,
                       "-keyout", str(directory / CA_KEY), "-out", str(cert), "-days", DAYS])
    return cert


def server_cert(openssl: str, directory: Path, stem: str, dns_name: str) -> tuple[Path, Path]:
    """A key and a certificate for ``dns_name`` signed by the CA in ``directory``:
    (certificate, key), named ``<stem>.pem`` and ``<stem>.key``."""
    config = directory / f"{stem}.cnf"
    config.write_text(_SERVER_CONFIG.format(name=dns_name), encoding="ascii")
    key, csr, cert = (directory / f"{stem}.key", directory / f"{stem}.csr",
                      directory / f"{stem}.pem")
    _openssl(openssl, ["req", "-new", "-config", str(config), *_NEW_KEY,
                       "-keyout", str(key), "-out", str(csr)])
    _openssl(openssl, ["x509", "-req", "-in", str(csr), "-CA", str(directory / CA_CERT),
                       "-CAkey", str(directory / CA_KEY), "-set_serial",
                       str(secrets.randbits(63)), "-days", DAYS, "-extfile", str(config),
                       "-extensions", "v3_server", "-out", str(cert)])
    csr.unlink(missing_ok=True)
    return cert, key

"""Certificates made for a test, with trustme: a CA, and the leaf certificates it signs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import trustme


@dataclass(frozen=True)
class Pem:
    cert: Path
    key: Path


class CertificateAuthority:
    """A CA whose files live in ``folder``; :attr:`pem` holds its certificate.

    Args:
        folder: Where the PEM files are written.
        name: The CA's organisation name (also the stem of its files).
    """

    def __init__(self, folder: Path, name: str = "asr test CA") -> None:
        self._ca = trustme.CA(organization_name=name)
        self._folder = folder
        stem = name.replace(" ", "-")
        self.pem = Pem(folder / f"{stem}.pem", folder / f"{stem}.key")
        self._ca.cert_pem.write_to_path(str(self.pem.cert))
        self._ca.private_key_pem.write_to_path(str(self.pem.key))

    def leaf(self, stem: str, *, server: bool) -> Pem:
        """A certificate for ``localhost`` and ``127.0.0.1`` (a server) or a client."""
        names = ("localhost", "127.0.0.1") if server else (f"{stem}.client.test",)
        issued = self._ca.issue_cert(*names, common_name=stem)
        pem = Pem(self._folder / f"{stem}.pem", self._folder / f"{stem}.key")
        issued.cert_chain_pems[0].write_to_path(str(pem.cert))
        issued.private_key_pem.write_to_path(str(pem.key))
        return pem

"""The real, signed SNS notifications in tests/fixtures/sns, with the certificate each names."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class RealFixture:
    name: str
    body: bytes
    document: dict[str, Any]
    certificate_pem: bytes

    @property
    def cert_url(self) -> str:
        return str(self.document["SigningCertURL"])


def load_real_fixtures(directory: Path) -> list[RealFixture]:
    result = []
    for path in sorted(directory.glob("*.json")):
        raw = path.read_bytes()
        document = json.loads(raw)
        pem = (directory / document["SigningCertURL"].rsplit("/", 1)[1]).read_bytes()
        result.append(RealFixture(path.name, raw, document, pem))
    return result

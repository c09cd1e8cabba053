"""IPv4 and IPv6 addresses; dotted numbers outside 0-255 (lab values, versions) are left alone."""

from __future__ import annotations

import ipaddress
import re

from deid.detection.entities import Entity
from deid.detection.presidio_api import RecognizerResult
from deid.recognizers.base import ClinicalRecognizer, NoteStyle

IPV4 = re.compile(r"(?<![\d.])\d{1,3}(?:\.\d{1,3}){3}(?!\.?\d)")
IPV6 = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{1,4}:){2,7}[0-9A-Fa-f]{1,4}(?![\w:])|(?<![\w:])[0-9A-Fa-f:]*::[0-9A-Fa-f:]+(?![\w:])")


class IpAddressRecognizer(ClinicalRecognizer):
    ENTITIES = (Entity.IP_ADDRESS.value,)

    def find(self, text: str, style: NoteStyle) -> list[RecognizerResult]:
        results = []
        for pattern in (IPV4, IPV6):
            for match in pattern.finditer(text):
                try:
                    ipaddress.ip_address(match.group())
                except ValueError:
                    continue
                results.append(self.result(match.start(), match.end(), Entity.IP_ADDRESS.value, 0.9))
        return results

"""Realistic, consistent fakes chosen by a keyed hash of the real value.

Every choice is a pure function of (keystore secret, scope, real value): the same name in the
same scope always becomes the same fake, in any worker process, after any restart, with no
mapping table to leak. Without the secret the choice cannot be recomputed, so a fake cannot be
traced back by hashing candidate names. Fakes come from Faker's en_US providers (MIT).
"""

from __future__ import annotations

import ipaddress
import random
import re
import uuid

from faker import Faker
from faker.providers.person.en_US import Provider as PersonProvider

from deid.keystore import keyed_hash
from deid.surrogate_registry import surrogate_digest

_FIRST_NAMES: tuple[str, ...] = tuple(sorted(set(PersonProvider.first_names)))
_LAST_NAMES: tuple[str, ...] = tuple(sorted(set(PersonProvider.last_names)))
_FIRST_NAME_SET = frozenset(name.casefold() for name in _FIRST_NAMES)

_NAME_TOKEN = re.compile(r"[^\W\d_][\w'’-]*")
TITLES = frozenset(
    "dr mr mrs ms miss mx prof sir rn md np pa do phd jr sr ii iii iv dds lpn cna rph pharmd rt crna aprn dnp"
    " mba mph facp"
    # relations a detector may include in a name span ("Son David Marsh")
    " son daughter wife husband mother father brother sister mom dad aunt uncle niece nephew"
    " grandson granddaughter grandmother grandfather partner spouse friend neighbor pt patient".split()
)
# Words that describe a facility rather than identify it: kept so "GREENVIEW NURSING HOME"
# becomes "<fake> NURSING HOME" and still reads like a nursing home.
_FACILITY_WORDS = frozenset(
    "hospital hospitals medical med center centre ctr clinic clinics health healthcare system systems inc llc pc"
    " nursing home care memorial general gen regional reg university univ community children's childrens"
    " rehabilitation rehab institute of the and & at st saint family practice urgent county city state"
    " women's womens cancer heart behavioral mental hospice skilled assisted living manor village"
    " facility unit ward wing east west north south icu ed er or pavilion associates group partners".split()
)
_ZIP = re.compile(r"\d{5}(?:-?\d{4})?")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_SEP = "\x1f"


def same_case(template: str, word: str) -> str:
    """``word`` written in the case style of ``template`` (ALL CAPS notes stay ALL CAPS)."""
    if template.isupper() and len(template) > 1:
        return word.upper()
    if template.islower():
        return word.lower()
    if template[:1].isupper():
        return word[:1].upper() + word[1:]
    return word


class SurrogateFactory:
    """Deterministic keyed fakes; one instance per process (Faker is not shared across threads).

    Every fake handed out is also registered (as a digest, see :mod:`deid.surrogate_registry`)
    until the caller drains the registrations after each unit of work.
    """

    def __init__(self, secret: bytes, *, date_shift_max_days: int, keep_originals: bool = False) -> None:
        self._secret = secret
        self._max_shift = date_shift_max_days
        self._faker = Faker("en_US")
        self._registered: set[str] = set()
        # Only for the re-identification vault (off by default): (fake, original) pairs, real PHI,
        # held in memory until the run seals them into the vault.
        self._keep_originals = keep_originals
        self._originals: dict[str, str] = {}

    def register(self, original: str, fake: str) -> str:
        """Note that ``fake`` replaced ``original`` in the output; returns ``fake``."""
        value = surrogate_digest(original, fake)
        if value is not None:
            self._registered.add(value)
            if self._keep_originals:
                self._originals[fake] = original
        return fake

    def drain_registered(self) -> frozenset[str]:
        """Digests of the fakes handed out since the last drain."""
        drained = frozenset(self._registered)
        self._registered.clear()
        return drained

    def drain_originals(self) -> list[tuple[str, str]]:
        """(fake, original) pairs since the last drain; always empty unless ``keep_originals``."""
        drained = list(self._originals.items())
        self._originals.clear()
        return drained

    def _seed(self, *parts: str) -> int:
        return int(keyed_hash(self._secret, _SEP.join(parts)), 16)

    def _rng(self, *parts: str) -> random.Random:
        return random.Random(self._seed(*parts))

    def _seeded_faker(self, *parts: str) -> Faker:
        self._faker.seed_instance(self._seed(*parts))
        return self._faker

    def date_offset(self, patient_scope: str) -> int:
        """Days to move every date of one patient: never zero, at most ``date_shift_max_days``."""
        seed = self._seed("date-shift", patient_scope)
        magnitude = 1 + seed % self._max_shift
        return magnitude if (seed >> 64) & 1 else -magnitude

    def name_token(self, token: str, scope: str) -> str:
        """One name word; given names map to given names, other words to surnames, case kept."""
        key = re.sub(r"\d+$", "", token.casefold())  # Synthea-style "Denis399" is "Denis" in notes
        if key.rstrip(".") in TITLES:
            return token
        if len(key.rstrip(".")) == 1:
            letter = chr(ord("a") + self._seed("initial", scope, key) % 26)
            return self.register(token, same_case(token, letter) + token[1:])
        bare = key
        pool = _FIRST_NAMES if bare in _FIRST_NAME_SET else _LAST_NAMES
        seed = self._seed("name", scope, key)
        fake = pool[seed % len(pool)]
        if fake.casefold() == bare:
            fake = pool[(seed + 1) % len(pool)]
        return self.register(token, same_case(token, fake))

    def name(self, text: str, scope: str) -> str:
        """A full name word by word, so "Anne O'Connell" and "Mrs. O'Connell" share the surname."""
        return self.register(text, _NAME_TOKEN.sub(lambda m: self.name_token(m.group(0), scope), text))

    def location(self, text: str, scope: str) -> str:
        stripped = text.strip()
        if _ZIP.fullmatch(stripped):
            return self.identifier(text, scope)
        faker = self._seeded_faker("location", scope, stripped.casefold())
        if any(ch.isdigit() for ch in stripped):
            fake = faker.street_address()
            if "," in stripped:
                fake += ", " + faker.city()
        else:
            fake = faker.city()
        return self.register(text, same_case(stripped, fake) if stripped.isupper() or stripped.islower() else fake)

    def hospital(self, text: str, scope: str) -> str:
        """Replace the distinctive words of a facility name, keep the generic ones."""
        words = text.split(" ")
        distinctive = [w for w in words if w and w.casefold().strip(".,") not in _FACILITY_WORDS]
        if not distinctive:
            return text
        rng = self._rng("hospital", scope, text.casefold())
        replacement = rng.choice(_LAST_NAMES)
        out: list[str] = []
        replaced = False
        for word in words:
            if word and word.casefold().strip(".,") not in _FACILITY_WORDS:
                if not replaced:
                    out.append(same_case(word, replacement))
                    replaced = True
                continue
            out.append(word)
        self.register(text, replacement)
        return self.register(text, " ".join(out))

    def email(self, text: str, scope: str) -> str:
        rng = self._rng("email", scope, text.casefold())
        local = f"{rng.choice(_FIRST_NAMES)}.{rng.choice(_LAST_NAMES)}{rng.randrange(10, 99)}".lower()
        return self.register(text, same_case(text, f"{local}@example.{rng.choice(('org', 'com', 'net'))}"))

    def url(self, text: str, scope: str) -> str:
        rng = self._rng("url", scope, text.casefold())
        host = f"{rng.choice(_LAST_NAMES).lower()}-{rng.choice(_LAST_NAMES).lower()}.example.org"
        scheme = "https://" if text.lower().startswith("https") else "http://" if "://" in text else ""
        return self.register(text, f"{scheme}{'www.' if 'www.' in text.lower() else ''}{host}/")

    def ip_address(self, text: str, scope: str) -> str:
        rng = self._rng("ip", scope, text.casefold())
        try:
            version = ipaddress.ip_address(text.strip()).version
        except ValueError:
            return self.identifier(text, scope)
        if version == 6:
            fake = str(ipaddress.IPv6Address((0xFD << 120) | rng.getrandbits(120)))  # unique-local range
        else:
            fake = f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
        return self.register(text, fake)

    def identifier(self, text: str, scope: str) -> str:
        """Format-preserving: digits stay digits, letters stay letters (same case), the rest stays."""
        if _UUID.fullmatch(text):
            return self.resource_id(text)
        rng = self._rng("identifier", scope, text)
        for _ in range(8):
            fake = "".join(
                str(rng.randrange(10))
                if ch.isdigit()
                else chr(ord("A" if ch.isupper() else "a") + rng.randrange(26))
                if ch.isascii() and ch.isalpha()
                else ch
                for ch in text
            )
            if fake != text:
                return self.register(text, fake)
        return fake

    def resource_id(self, value: str) -> str:
        """A pseudonymous id, the same across every file of the corpus so references still resolve."""
        digest = keyed_hash(self._secret, _SEP.join(("resource-id", value)))
        if _UUID.fullmatch(value):
            return self.register(value, str(uuid.UUID(hex=digest[:32], version=4)))
        return self.register(value, digest[: min(64, max(16, len(value)))])

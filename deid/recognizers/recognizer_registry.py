"""The appliance's recognizer set on Presidio's ``RecognizerRegistry``.

Presidio's predefined recognizers are deliberately not loaded: on clinical text their driver-
licence, URL, date and NER-based person/location recognizers misfire ("O2", "q2", "edema.pl",
"today", "Foley") and their URL/e-mail validation may reach for the network. Every recognizer
here replaces one of them or covers a Safe Harbor identifier they lack.
"""

from __future__ import annotations

from collections.abc import Callable

from deid.detection.presidio_api import EntityRecognizer, RecognizerRegistry
from deid.recognizers.address import AddressRecognizer
from deid.recognizers.address_cue import AddressCueRecognizer
from deid.recognizers.age import AgeOver89Recognizer
from deid.recognizers.dates import DateRecognizer
from deid.recognizers.dictionary_name import DictionaryNameRecognizer
from deid.recognizers.email import EmailRecognizer
from deid.recognizers.generic_id import GenericIdRecognizer
from deid.recognizers.hospital import HospitalRecognizer
from deid.recognizers.ip_address import IpAddressRecognizer
from deid.recognizers.labeled_id import LabeledIdRecognizer
from deid.recognizers.lexicon import Lexicon
from deid.recognizers.location import LocationRecognizer
from deid.recognizers.organization import OrganizationRecognizer
from deid.recognizers.phone import PhoneRecognizer
from deid.recognizers.place_name import PlaceNameRecognizer
from deid.recognizers.proper_noun import UnknownProperNounRecognizer
from deid.recognizers.site_terms import SiteTermsRecognizer
from deid.recognizers.spacy_ner import SpacyNerRecognizer
from deid.recognizers.ssn import SsnRecognizer
from deid.recognizers.titled_name import TitledNameRecognizer
from deid.recognizers.url import UrlRecognizer
from deid.recognizers.vehicle import VehicleRecognizer
from deid.site_terms_file import SiteTerms

RecognizerFactory = Callable[[Lexicon], EntityRecognizer]

FACTORIES: tuple[RecognizerFactory, ...] = (
    lambda lexicon: DateRecognizer(),
    lambda lexicon: PhoneRecognizer(),
    lambda lexicon: EmailRecognizer(),
    lambda lexicon: UrlRecognizer(),
    lambda lexicon: SsnRecognizer(),
    lambda lexicon: IpAddressRecognizer(),
    lambda lexicon: LabeledIdRecognizer(),
    lambda lexicon: GenericIdRecognizer(),
    lambda lexicon: AgeOver89Recognizer(),
    AddressRecognizer,
    lambda lexicon: AddressCueRecognizer(),
    lambda lexicon: VehicleRecognizer(),
    HospitalRecognizer,
    LocationRecognizer,
    PlaceNameRecognizer,
    OrganizationRecognizer,
    TitledNameRecognizer,
    DictionaryNameRecognizer,
    UnknownProperNounRecognizer,
)


def build_registry(lexicon: Lexicon, use_spacy_ner: bool = False, site_terms: SiteTerms | None = None) -> RecognizerRegistry:
    """A registry holding one instance of each clinical recognizer, plus the site's own terms if given."""
    recognizers = [factory(lexicon) for factory in FACTORIES]
    if site_terms:
        recognizers.append(SiteTermsRecognizer(site_terms))
    if use_spacy_ner:
        recognizers.append(SpacyNerRecognizer(lexicon))
    return RecognizerRegistry(recognizers=recognizers, supported_languages=["en"])

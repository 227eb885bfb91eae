"""Event identity (DES rules, the highest calendar authority; domain notes §6.3):

- cal8 = `CAL8-YYYYMMDD-HHMM-CCC-NNN`: the event's UTC minute and currency, NNN a collision suffix
  (001-999) telling apart events of the same currency in the same minute; assigned by the book.
- cal5 = `RCCIS`: region R (1 North America, 2 Europe, 3 Asia-Pacific, 4 Latin America, 5 Middle
  East/Africa, 9 other), country CC within the region, impact I (MEDIUM 2, HIGH 3) and the checksum
  S = (R + CC + I) mod 10; USD MEDIUM is 10124. CHF and LOW events get 00000 (never a matrix key).
- event type from title keywords, checked in the order CPI, NFP, PMI, RATE, GDP (so "Unemployment
  Rate" is NFP); signal type ECO_HIGH_/ECO_MED_/ECO_LOW_<CCY>, CHF always ECO_UNCAT.
"""

from __future__ import annotations

import re
from datetime import datetime

from eafix.calendar_ingestor.entries import EventType, Impact

UNCATEGORISED = "00000"
UNCAT_SIGNAL = "ECO_UNCAT"
UNCAT_CURRENCIES = frozenset({"CHF"})  # DES DEC-CAL-002: kept, block, never drive a re-entry lookup
CAL8_PATTERN = re.compile(r"^CAL8-\d{8}-\d{4}-[A-Z]{3}-\d{3}$")
CAL5_PATTERN = re.compile(r"^\d{5}$")
MAX_SUFFIX = 999

# currency -> (region, country within the region)
REGIONS: dict[str, tuple[int, int]] = {
    "USD": (1, 1), "CAD": (1, 2), "MXN": (1, 3),
    "EUR": (2, 1), "GBP": (2, 2), "CHF": (2, 3), "SEK": (2, 4), "NOK": (2, 5), "DKK": (2, 6),
    "PLN": (2, 7), "CZK": (2, 8), "HUF": (2, 9),
    "JPY": (3, 1), "AUD": (3, 2), "NZD": (3, 3), "CNY": (3, 4), "HKD": (3, 5), "SGD": (3, 6),
    "INR": (3, 7), "KRW": (3, 8),
    "BRL": (4, 1), "CLP": (4, 2), "COP": (4, 3), "ARS": (4, 4),
    "ZAR": (5, 1), "TRY": (5, 2), "ILS": (5, 3), "SAR": (5, 4),
}
OTHER_REGION = (9, 99)
IMPACT_DIGIT = {Impact.MEDIUM: 2, Impact.HIGH: 3}

# (type, keywords), first match wins
_TYPE_KEYWORDS: tuple[tuple[EventType, tuple[str, ...]], ...] = (
    (EventType.CPI, ("cpi", "inflation", "consumer price")),
    (EventType.NFP, ("nfp", "non-farm", "nonfarm", "payroll", "employment")),
    (EventType.PMI, ("pmi", "purchasing manager", "manufacturing")),
    (EventType.RATE, ("rate", "interest", "fed funds", "monetary policy")),
    (EventType.GDP, ("gdp", "gross domestic")),
)
_SIGNAL_IMPACT = {Impact.HIGH: "HIGH", Impact.MEDIUM: "MED", Impact.LOW: "LOW"}


def cal5(currency: str, impact: Impact) -> str:
    digit = IMPACT_DIGIT.get(impact)
    if digit is None or currency in UNCAT_CURRENCIES:
        return UNCATEGORISED
    region, country = REGIONS.get(currency, OTHER_REGION)
    return f"{region}{country:02d}{digit}{(region + country + digit) % 10}"


def cal5_valid(code: str) -> bool:
    """Five digits whose last is the checksum of the others (00000 included)."""
    if not CAL5_PATTERN.match(code):
        return False
    region, country, digit = int(code[0]), int(code[1:3]), int(code[3])
    return (region + country + digit) % 10 == int(code[4])


def cal8_stem(event_time: datetime, currency: str) -> str:
    return f"CAL8-{event_time:%Y%m%d-%H%M}-{currency}"


def cal8(event_time: datetime, currency: str, suffix: int) -> str:
    if not 1 <= suffix <= MAX_SUFFIX:
        raise ValueError(f"cal8 collision suffix {suffix} outside 001-{MAX_SUFFIX}")
    return f"{cal8_stem(event_time, currency)}-{suffix:03d}"


def event_type(title: str) -> EventType:
    lowered = title.lower()
    for kind, words in _TYPE_KEYWORDS:
        if any(w in lowered for w in words):
            return kind
    return EventType.DEFAULT


def signal_type(currency: str, impact: Impact) -> str:
    if currency in UNCAT_CURRENCIES:
        return UNCAT_SIGNAL
    return f"ECO_{_SIGNAL_IMPACT[impact]}_{currency}"


__all__ = ["CAL8_PATTERN", "UNCATEGORISED", "UNCAT_SIGNAL", "cal5", "cal5_valid", "cal8", "cal8_stem", "event_type",
           "signal_type"]

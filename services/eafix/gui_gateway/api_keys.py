"""Local API keys for automation (compliance-monitor, scripts) and the first admin. Pure CPU.

A key is `<id>.<secret>`; only an argon2id hash of the whole key is stored, in a mounted secret file
(`SERVICE_API_KEYS`), one key per line:

    <id> <role>[,<role>...] <argon2 hash>        # e.g. compliance trader,admin $argon2id$v=19$...

The first admin (`SERVICE_BOOTSTRAP_ADMIN`, also a mounted secret file) is one line `<id> <argon2
hash>` and gets role admin; `eafix gateway-key` prints a new key and its line."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from eafix.gui_gateway.principals import Principal, Role, parse_roles

KEY_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


class ApiKeyError(ValueError):
    """A malformed key file; str() names the file and line."""


@dataclass(frozen=True)
class ApiKeyEntry:
    key_id: str
    roles: frozenset[Role]
    hash: str


def _entry(key_id: str, roles: frozenset[Role], hashed: str, where: str) -> ApiKeyEntry:
    if not KEY_ID.match(key_id):
        raise ApiKeyError(f"{where}: key id {key_id!r} must match {KEY_ID.pattern}")
    if not hashed.startswith("$argon2"):
        raise ApiKeyError(f"{where}: {key_id}: not an argon2 hash (store hashes, never keys)")
    if not roles:
        raise ApiKeyError(f"{where}: {key_id}: no role")
    return ApiKeyEntry(key_id, roles, hashed)


def parse_key_file(text: str, origin: str = "SERVICE_API_KEYS") -> list[ApiKeyEntry]:
    entries: dict[str, ApiKeyEntry] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()  # argon2 hashes never contain '#'

        if not line:
            continue
        where = f"{origin} line {number}"
        fields = line.split()
        if len(fields) != 3:
            raise ApiKeyError(f"{where}: expected `<id> <roles> <argon2 hash>`, got {len(fields)} field(s)")
        try:
            roles = parse_roles(fields[1].split(","))
        except ValueError as exc:
            raise ApiKeyError(f"{where}: {exc}") from None
        if fields[0] in entries:
            raise ApiKeyError(f"{where}: key id {fields[0]!r} appears twice")
        entries[fields[0]] = _entry(fields[0], roles, fields[2], where)
    return list(entries.values())


def parse_bootstrap_admin(text: str, origin: str = "SERVICE_BOOTSTRAP_ADMIN") -> ApiKeyEntry:
    fields = text.split()
    if len(fields) != 2:
        raise ApiKeyError(f"{origin}: expected one line `<id> <argon2 hash>`")
    return _entry(fields[0], frozenset({Role.ADMIN}), fields[1], origin)


class ApiKeys:
    """Verifies presented keys against the stored hashes (argon2 verify: tens of ms by design; the
    HTTP adapter runs it in a thread and caches successes briefly)."""

    def __init__(self, entries: Iterable[ApiKeyEntry], hasher: PasswordHasher | None = None) -> None:
        self._entries: dict[str, ApiKeyEntry] = {}
        for entry in entries:
            if entry.key_id in self._entries:
                raise ApiKeyError(f"key id {entry.key_id!r} is defined twice (API keys and bootstrap admin)")
            self._entries[entry.key_id] = entry
        self._hasher = hasher or PasswordHasher()
        # verified against when the id is unknown, so an unknown id costs as much as a wrong secret
        self._decoy = self._hasher.hash(secrets.token_urlsafe(16))

    def __len__(self) -> int:
        return len(self._entries)

    def verify(self, presented: str) -> Principal | None:
        key_id, dot, secret = presented.partition(".")
        entry = self._entries.get(key_id) if dot and secret else None
        try:
            self._hasher.verify(entry.hash if entry else self._decoy, presented)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return None
        if entry is None:
            return None
        return Principal(f"apikey:{entry.key_id}", entry.roles, "api-key")


def new_key(key_id: str, roles: Iterable[Role], hasher: PasswordHasher | None = None) -> tuple[str, str]:
    """(the key to hand over once, the line to store in SERVICE_API_KEYS)."""
    if not KEY_ID.match(key_id):
        raise ApiKeyError(f"key id {key_id!r} must match {KEY_ID.pattern}")
    key = f"{key_id}.{secrets.token_urlsafe(32)}"
    labels = ",".join(r.label for r in sorted(set(roles), reverse=True))
    return key, f"{key_id} {labels} {(hasher or PasswordHasher()).hash(key)}"

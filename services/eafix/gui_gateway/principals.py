"""Who is calling and what they may do: principals, the three roles and the policy. Pure.

Roles are ordered: admin may do what trader may, trader what viewer may. A principal comes from an
OIDC token (`via="oidc"`) or a local API key (`via="api-key"`)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any


class Role(IntEnum):
    VIEWER = 1
    TRADER = 2
    ADMIN = 3

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, name: str) -> Role:
        found = cls.named(name)
        if found is None:
            raise ValueError(f"unknown role {name!r} (roles: viewer, trader, admin)")
        return found

    @classmethod
    def named(cls, name: str) -> Role | None:
        """The role spelled `name` (any case, surrounding spaces), or None. ASCII only: str.upper()
        maps look-alikes onto the names (`admın` with a dotless i is ADMIN), which must grant nothing."""
        text = name.strip()
        return cls.__members__.get(text.upper()) if text.isascii() else None


@dataclass(frozen=True)
class Principal:
    name: str
    roles: frozenset[Role]
    via: str  # oidc | api-key

    def may(self, needed: Role) -> bool:
        return any(role >= needed for role in self.roles)

    @property
    def role_labels(self) -> str:
        """Comma-separated, highest first: what `X-Eafix-Roles` carries to the peers."""
        return ",".join(r.label for r in sorted(self.roles, reverse=True))


def roles_from_claim(claims: dict[str, Any], path: str) -> frozenset[Role]:
    """The roles in the claim at dotted `path` (e.g. `roles`, `realm_access.roles`): a list of names
    or one space/comma-separated string. Names that are not viewer/trader/admin are ignored (an IdP
    carries many unrelated groups)."""
    value: Any = claims
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if isinstance(value, str):
        value = re.split(r"[\s,]+", value)
    if not isinstance(value, list):
        return frozenset()
    return frozenset(role for item in value if isinstance(item, str) and (role := Role.named(item)) is not None)


def parse_roles(names: Iterable[str]) -> frozenset[Role]:
    return frozenset(Role.parse(n) for n in names if n.strip())


SAFE_ID = re.compile(r"[^A-Za-z0-9._:~-]")


def source_id(principal: Principal) -> str:
    """`operator:<name>` fitted to the contracts' Id pattern (64 chars, a safe alphabet), for the
    `source` of events the gateway publishes on an operator's behalf."""
    return ("operator:" + SAFE_ID.sub("_", principal.name))[:64]

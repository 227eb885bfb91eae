"""Property tests of gui-gateway's credential parsing: the API key file and bootstrap admin
(`eafix.gui_gateway.api_keys.parse_key_file`, `parse_bootstrap_admin`, `ApiKeys.verify`), role names
(`eafix.gui_gateway.principals.Role.parse`, `parse_roles`, `roles_from_claim`), bearer JWTs
(`eafix.gui_gateway.tokens.verify_token`) and the issuer's key set (`eafix.gui_gateway.jwks.parse_jwks`).

Covered: any text, and a valid key file with one character mutated, parse or raise ApiKeyError naming
the origin and line; key files written from entries parse back to the same entries; any presented key
verifies to None or the right principal, never raising; a role is granted only for exactly its ASCII
name (a look-alike such as `admın`, whose upper case is ADMIN, grants nothing); any token (random
segments, any header values, validly signed with any claims) ends in a principal or AuthError 401;
any JWKS document gives a key map, never an exception.
"""

from __future__ import annotations

import asyncio
import base64
import json
import string

import jwt
from argon2 import PasswordHasher
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import example, given
from hypothesis import strategies as st
from jwt import PyJWK
from jwt.algorithms import ECAlgorithm

from eafix.gui_gateway.api_keys import ApiKeyEntry, ApiKeyError, ApiKeys, parse_bootstrap_admin, parse_key_file
from eafix.gui_gateway.jwks import parse_jwks
from eafix.gui_gateway.principals import Role, parse_roles, roles_from_claim
from eafix.gui_gateway.tokens import AuthError, OidcConfig, verify_token
from service.property_strategies import fuzz_text, mutated

CHEAP = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
HASH = CHEAP.hash("ops.s3cret")
NAMES = {r.name.lower(): r for r in Role}
key_ids = st.from_regex(r"[a-z0-9][a-z0-9_-]{0,20}", fullmatch=True)
role_sets = st.frozensets(st.sampled_from(list(Role)), min_size=1)
# characters that are not ASCII but whose upper case is (ı -> I, ſ -> S, ﬀ -> FF): worked out here
LOOKALIKES = [chr(c) for c in range(0x80, 0x20000) if chr(c).upper().isascii() and chr(c).upper().isalpha()]
json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | fuzz_text,
                           lambda inner: st.lists(inner, max_size=2) | st.dictionaries(fuzz_text, inner, max_size=2),
                           max_leaves=5)

PRIVATE = ec.generate_private_key(ec.SECP256R1())
PUBLIC_JWK = json.loads(ECAlgorithm.to_jwk(PRIVATE.public_key())) | {"kid": "k1", "alg": "ES256", "use": "sig"}
CONFIG = OidcConfig(issuer="https://idp.example", audience="eafix")


def key_line(key_id: str, roles: frozenset[Role], hashed: str = HASH) -> str:
    return f"{key_id} {','.join(r.label for r in sorted(roles))} {hashed}"


@st.composite
def key_files(draw: st.DrawFn) -> tuple[str, list[tuple[str, frozenset[Role]]]]:
    entries = draw(st.lists(st.tuples(key_ids, role_sets), max_size=4, unique_by=lambda e: e[0]))
    lines = []
    for key_id, roles in entries:
        lines += draw(st.lists(st.sampled_from(["", "  ", "# a comment"]), max_size=1))
        lines.append(key_line(key_id, roles) + draw(st.sampled_from(["", "  # note", "\t"])))
    return "\n".join(lines) + "\n", entries


@given(fuzz_text | mutated(key_files().map(lambda f: f[0])))
def test_any_key_file_parses_or_names_its_line(text) -> None:
    try:
        entries = parse_key_file(text, "keys.txt")
    except ApiKeyError as exc:
        assert str(exc).startswith("keys.txt line ")
        line = int(str(exc).split()[2].rstrip(":"))
        assert 1 <= line <= len(text.splitlines())
        return
    assert all(e.hash.startswith("$argon2") and e.roles for e in entries)


@given(key_files())
def test_key_files_round_trip(file) -> None:
    text, entries = file
    assert [(e.key_id, e.roles, e.hash) for e in parse_key_file(text)] == [(k, r, HASH) for k, r in entries]


@given(fuzz_text | mutated(key_ids.map(lambda k: f"{k} {HASH}\n")))
def test_any_bootstrap_admin_parses_or_raises_api_key_error(text) -> None:
    try:
        entry = parse_bootstrap_admin(text)
    except ApiKeyError as exc:
        assert str(exc).startswith("SERVICE_BOOTSTRAP_ADMIN")
        return
    assert entry.roles == frozenset({Role.ADMIN})


KEYS = ApiKeys([ApiKeyEntry("ops", frozenset({Role.TRADER}), HASH)], hasher=CHEAP)


@given(fuzz_text | mutated(st.just("ops.s3cret")))
@example("ops.s3cret")
def test_any_presented_key_verifies_to_none_or_its_principal(presented) -> None:
    principal = KEYS.verify(presented)
    if presented == "ops.s3cret":
        assert principal is not None and principal.roles == frozenset({Role.TRADER})
    else:
        assert principal is None


def role_like(draw_text: str) -> bool:
    return draw_text.strip().isascii() and draw_text.strip().lower() in NAMES


role_names = st.sampled_from(["admin", " Trader ", "VIEWER"]) | st.builds(
    lambda name, at, char: name[:at] + char + name[at + 1:], st.sampled_from(list(NAMES)), st.integers(0, 5),
    st.sampled_from(LOOKALIKES)) | fuzz_text


@given(role_names)
@example("admın")  # dotless i: upper() is ADMIN; was granted admin
@example("ﬀ")
def test_a_role_is_only_its_exact_ascii_name(name) -> None:
    expected = NAMES[name.strip().lower()] if role_like(name) else None
    assert roles_from_claim({"roles": [name]}, "roles") == (frozenset({expected}) if expected else frozenset())
    assert roles_from_claim({"realm_access": {"roles": name}}, "realm_access.roles") <= frozenset(Role)
    try:
        assert Role.parse(name) == expected
    except ValueError:
        assert expected is None
    try:
        assert parse_roles([name]) == (frozenset({expected}) if name.strip() else frozenset())
    except ValueError:
        assert expected is None and name.strip()


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


async def lookup(kid: str) -> PyJWK | None:
    return PyJWK(PUBLIC_JWK) if kid == "k1" else None


def verify(token: str):
    return asyncio.run(verify_token(token, CONFIG, lookup))


segments = st.text(string.ascii_letters + string.digits + "-_=.", max_size=40)


@given(segments | fuzz_text
       | st.builds(lambda h, p, s: f"{b64(json.dumps(h).encode())}.{b64(json.dumps(p).encode())}.{s}",
                   st.dictionaries(st.sampled_from(["alg", "kid", "typ", "crit"]), json_values), json_values, segments))
@example(b64(json.dumps({"alg": ["ES256"], "kid": "k1"}).encode()) + ".e30.x")  # a list alg: was TypeError (a 500)
def test_any_token_is_refused_with_a_401(token) -> None:
    try:
        verify(token)
    except AuthError as exc:
        assert exc.status == 401 and exc.reason and exc.detail
    else:
        raise AssertionError("an unsigned token was accepted")


@given(st.dictionaries(st.sampled_from(["iss", "aud", "exp", "nbf", "iat", "sub", "roles"]), json_values),
       st.booleans())
def test_any_signed_claims_give_a_principal_or_a_401(claims, good_core) -> None:
    if good_core:
        claims |= {"iss": CONFIG.issuer, "aud": CONFIG.audience, "exp": 4_000_000_000}
    # signed as is (jwt.encode would refuse some claim values before signing them)
    token = jwt.PyJWS().encode(json.dumps(claims).encode(), PRIVATE, algorithm="ES256", headers={"kid": "k1"})
    try:
        principal = verify(token)
    except AuthError as exc:
        assert exc.status == 401
    else:
        assert principal.name == claims["sub"] and principal.roles <= frozenset(Role)


@given(json_values | st.fixed_dictionaries({"keys": st.lists(json_values | st.just(PUBLIC_JWK) | st.builds(
    lambda k, v: PUBLIC_JWK | {k: v}, st.sampled_from(["kty", "crv", "x", "y", "alg", "use", "kid"]), json_values),
    max_size=3)}))
def test_any_jwks_document_gives_a_key_map(document) -> None:
    keys = parse_jwks(document)
    assert all(isinstance(kid, str) and key.algorithm_name in ("RS256", "ES256") for kid, key in keys.items())

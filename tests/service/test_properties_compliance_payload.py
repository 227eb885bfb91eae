"""Property tests of compliance-monitor's Alertmanager webhook intake: the payload parser
(`eafix.compliance_monitor.alerts.parse_notification`, behind `POST /webhook/alertmanager`) and the
webhook authentication (`eafix.compliance_monitor.webhook_auth.check`).

Covered: any bytes, a valid notification with one character mutated, and one with a field replaced by
anything give a Notification or PayloadError (a 422), never another exception (deep nesting was a
RecursionError, a 500); a replaced field is named in the message; a notification serialised back to
JSON parses to the same model; the authentication answers None only for the right bearer token or
body signature, and a refusal reason otherwise, for any headers and body.
"""

from __future__ import annotations

import json

from hypothesis import example, given
from hypothesis import strategies as st

from eafix.compliance_monitor.alerts import PayloadError, parse_notification
from eafix.compliance_monitor.webhook_auth import Rejection, check, sign
from service.compliance_payloads import HALT, WARN, alert, notification
from service.property_strategies import fuzz_bytes, fuzz_text, mutated, replaced

VALID = notification(alert(HALT, "a1"), alert(WARN, "b2", status="resolved"))
VALID_TEXT = json.dumps(VALID)
json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | fuzz_text,
                           lambda inner: st.lists(inner, max_size=2) | st.dictionaries(fuzz_text, inner, max_size=2),
                           max_leaves=5)


def paths(node, prefix=()) -> list[tuple]:
    """Every key path of a JSON document (dict keys and list indexes), outermost first."""
    out = []
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
    for key, value in items:
        out.append((*prefix, key))
        out.extend(paths(value, (*prefix, key)))
    return out



@given(fuzz_bytes | mutated(st.just(VALID_TEXT)).map(str.encode))
@example(b"[" * 100_000)  # was a RecursionError (a 500)
@example(b"\xff\xfe{")
def test_any_body_parses_or_raises_payload_error(body) -> None:
    try:
        parse_notification(body)
    except PayloadError as exc:
        assert str(exc)


@given(st.sampled_from(paths(VALID)), json_values)
def test_a_replaced_field_is_named(path, value) -> None:
    body = json.dumps(replaced(VALID, path, value)).encode()
    try:
        parse_notification(body)
    except PayloadError as exc:
        # pydantic names the field it refused: the replaced one, or (for a value of a wrong shape
        # below it, or a missing required key) a path that shares its first step
        assert str(exc).startswith(str(path[0])), (path, str(exc))


@given(st.lists(st.builds(alert, st.dictionaries(fuzz_text, fuzz_text, max_size=3), fuzz_text.filter(bool),
                          st.sampled_from(["firing", "resolved"])), max_size=4))
def test_notifications_round_trip(alerts) -> None:
    parsed = parse_notification(json.dumps(notification(*alerts)).encode())
    assert parse_notification(parsed.model_dump_json().encode()) == parsed
    assert [a.labels for a in parsed.alerts] == [a["labels"] for a in alerts]


HEADER_NAMES = st.sampled_from(["authorization", "x-alertmanager-signature", "other"])


@given(fuzz_text.map(str.strip).filter(bool), fuzz_bytes, st.dictionaries(HEADER_NAMES, fuzz_text, max_size=3))
def test_webhook_auth_accepts_only_the_secret(secret, body, headers) -> None:
    answer = check(secret, headers, body)
    authorization = headers.get("authorization", "")
    right_token = authorization.partition(" ")[0].lower() == "bearer" and \
        authorization.partition(" ")[2].strip() == secret
    right_signature = not authorization and headers.get("x-alertmanager-signature", "").strip() == sign(secret, body)
    assert (answer is None) == (right_token or right_signature)
    assert answer is None or isinstance(answer, Rejection)
    assert check(secret, {"authorization": f"Bearer {secret}"}, body) is None
    assert check(secret, {"x-alertmanager-signature": sign(secret, body)}, body) is None

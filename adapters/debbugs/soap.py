"""The debbugs SOAP interface without I/O: request envelopes in, SOAP::Lite
responses decoded, bug statuses and bug log records made regular.

debbugs answers with SOAP::Lite (RPC/encoded, SOAP 1.1).  What it sends:
typed scalars (`xsi:type="xsd:int"`, `xsd:string`), strings that are not
plain ASCII as `xsd:base64Binary`, lists as `soapenc:Array`, hashes as
`apachens:Map` (`<item><key/><value/></item>`), nil as `xsi:nil="true"`,
and elements with no type at all: a struct when they have children, a
string or nothing when they do not.
"""

from __future__ import annotations

import base64
import binascii
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from email.parser import HeaderParser
from typing import Any
from xml.sax.saxutils import escape

from debpulse.emitters.errors import DebpulseError

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP_ENC = "http://schemas.xmlsoap.org/soap/encoding/"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
NAMESPACE = "Debbugs/SOAP"
_TYPE = f"{{{XSI}}}type"
_NIL = f"{{{XSI}}}nil"


class SoapError(DebpulseError):
    """debbugs' SOAP service did not answer usefully.  `retry` says whether
    asking again later may help (a timeout, a 503) or not (a fault)."""

    retry = False


class SoapFault(SoapError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"SOAP fault {code}: {message}")
        self.code, self.message = code, message


class SoapUnavailable(SoapError):
    retry = True


# --- requests -------------------------------------------------------------

def _encode(value: Any, name: str) -> str:
    if isinstance(value, bool):
        raise TypeError("debbugs takes no booleans")
    if isinstance(value, int):
        return f'<{name} xsi:type="xsd:int">{value}</{name}>'
    if isinstance(value, str):
        return f'<{name} xsi:type="xsd:string">{escape(value)}</{name}>'
    if isinstance(value, (list, tuple)):
        kind = "xsd:int" if value and all(isinstance(v, int) for v in value) else "xsd:anyType"
        items = "".join(_encode(v, "item") for v in value)
        return (f'<{name} xsi:type="soapenc:Array" soapenc:arrayType="{kind}[{len(value)}]">'
                f"{items}</{name}>")
    raise TypeError(f"cannot encode {type(value).__name__} for SOAP")


def build_request(method: str, *args: Any, namespace: str = NAMESPACE) -> bytes:
    """A SOAP 1.1 RPC/encoded call, as python-debianbts sends them."""
    params = "".join(_encode(a, f"arg{i}") for i, a in enumerate(args))
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<soap:Envelope xmlns:soap="{SOAP_ENV}" xmlns:soapenc="{SOAP_ENC}" '
        f'xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="{XSI}" '
        f'soap:encodingStyle="{SOAP_ENC}">'
        f'<soap:Body><ns:{method} xmlns:ns="{escape(namespace)}">{params}</ns:{method}></soap:Body>'
        "</soap:Envelope>"
    ).encode()


# --- responses ------------------------------------------------------------

def _local(name: str) -> str:
    return name.rsplit("}", 1)[-1].rsplit(":", 1)[-1]


def _child(el: ET.Element, name: str) -> ET.Element | None:
    # Children come in the response's default namespace or none at all.
    return next((c for c in el if _local(c.tag) == name), None)


def decode_value(el: ET.Element) -> Any:
    """One SOAP::Lite value.  Types are matched by their local name: SOAP::Lite
    always binds the same prefixes, and ElementTree does not keep them."""
    if el.get(_NIL) in ("true", "1"):
        return None
    kind = _local(el.get(_TYPE, ""))
    children = list(el)
    if kind == "Array" or el.get(f"{{{SOAP_ENC}}}arrayType") is not None:
        return [decode_value(c) for c in children]
    if kind == "Map":
        out: dict[Any, Any] = {}
        for item in children:
            key = _child(item, "key")
            value = _child(item, "value")
            if key is None:
                raise SoapError("apachens:Map item without a key")
            out[decode_value(key)] = None if value is None else decode_value(value)
        return out
    text = el.text or ""
    if kind == "base64Binary":
        try:
            raw = base64.b64decode(text, validate=False)
        except (binascii.Error, ValueError) as exc:
            raise SoapError(f"bad base64Binary in <{_local(el.tag)}>: {exc}") from None
        return raw.decode("utf-8", "replace")
    if kind in ("int", "integer", "long", "short"):
        try:
            return int(text)
        except ValueError:
            raise SoapError(f"<{_local(el.tag)}> is not an integer: {text!r}") from None
    if kind in ("float", "double", "decimal"):
        try:
            return float(text)
        except ValueError:
            raise SoapError(f"<{_local(el.tag)}> is not a number: {text[:80]!r}") from None
    if kind == "boolean":
        return text.strip() in ("true", "1")
    if kind:  # string, anyURI, ...
        return text
    if children:  # an untyped struct
        struct: dict[str, Any] = {}
        for c in children:
            struct[_local(c.tag)] = decode_value(c)
        return struct
    return text or None


def parse_envelope(data: bytes) -> ET.Element:
    """The Body's first element (the method response or the Fault)."""
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise SoapError(f"malformed SOAP response: {exc}") from None
    except LookupError as exc:  # <?xml encoding="..."?> names no codec
        raise SoapError(f"malformed SOAP response: {exc}") from None
    body = root.find(f"{{{SOAP_ENV}}}Body")
    if _local(root.tag) != "Envelope" or body is None or len(body) == 0:
        raise SoapError("malformed SOAP response: no soap:Envelope/soap:Body")
    first = body[0]
    if first.tag == f"{{{SOAP_ENV}}}Fault":
        code, text = _child(first, "faultcode"), _child(first, "faultstring")
        raise SoapFault((code is not None and (code.text or "").strip()) or "soap:Server",
                        " ".join(((text is not None and text.text) or "no faultstring").split()))
    return first


def decode_response(data: bytes, method: str) -> Any:
    """The return value of `method` in a response body."""
    response = parse_envelope(data)
    if _local(response.tag) != f"{method}Response":
        raise SoapError(f"expected {method}Response, got {_local(response.tag)}")
    values = list(response)
    if not values:
        return None
    return decode_value(values[0])


def decode_request(data: bytes) -> tuple[str, list[Any]]:
    """(method, arguments) of a request (for servers and tests)."""
    call = parse_envelope(data)
    return _local(call.tag), [decode_value(a) for a in call]


# --- what the values mean ------------------------------------------------

def _numbers(value: Any) -> list[int]:
    if value is None or value == "":
        return []
    if isinstance(value, int):
        return [value]
    if isinstance(value, list):
        return [n for v in value for n in _numbers(v)]
    return [int(v) for v in str(value).split() if re.fullmatch(r"[0-9]{1,18}", v)]


def _strings(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, list):
        return [str(v) for v in value if v not in (None, "")]
    if isinstance(value, dict):
        return [str(k) for k in value]
    return [str(value)]


def _opt_int(value: Any) -> int | None:
    try:
        return None if value in (None, "") else int(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: int(inf)
        return None


def status_of(raw: Mapping[str, Any]) -> dict[str, Any]:
    """A get_status entry as a regular dict (the body's `status`)."""
    return {
        "package": str(raw.get("package") or ""),
        "source": str(raw.get("source") or ""),
        "subject": str(raw.get("subject") or ""),
        # Who filed it ("Name <address>"); debbugs sends it as base64Binary
        # when it is not ASCII, which decode_value has undone already.
        "originator": " ".join(str(raw.get("originator") or "").split()) or None,
        "severity": str(raw.get("severity") or "normal"),
        "tags": str(raw.get("tags") or raw.get("keywords") or "").split(),
        "done": str(raw["done"]) if raw.get("done") else None,
        "forwarded": str(raw["forwarded"]) if raw.get("forwarded") else None,
        "owner": str(raw["owner"]) if raw.get("owner") else None,
        "pending": str(raw.get("pending") or ""),
        "found_versions": _strings(raw.get("found_versions")),
        "fixed_versions": _strings(raw.get("fixed_versions")),
        "mergedwith": _numbers(raw.get("mergedwith")),
        "blocks": _numbers(raw.get("blocks")),
        "blockedby": _numbers(raw.get("blockedby")),
        "affects": [p.strip() for p in str(raw.get("affects") or "").split(",") if p.strip()],
        "archived": bool(_opt_int(raw.get("archived"))),
        "date": _opt_int(raw.get("date")),
        "last_modified": _opt_int(raw.get("last_modified")),
        "log_modified": _opt_int(raw.get("log_modified")),
    }


def statuses_of(value: Any, asked: Iterable[int] | None = None) -> dict[int, dict[str, Any]]:
    """get_status' answer ({bug: status}), only for the bugs asked about.
    An empty answer (`<s-gensym3 />`) means none of them exists."""
    if not value:
        return {}
    if not isinstance(value, dict):
        raise SoapError(f"get_status answered a {type(value).__name__}, not a map")
    wanted = set(asked) if asked is not None else None
    out: dict[int, dict[str, Any]] = {}
    for key, raw in value.items():
        bug = _opt_int(key)
        if bug is None or not isinstance(raw, dict):
            raise SoapError(f"get_status entry {key!r} is not a bug status")
        if wanted is None or bug in wanted:
            out[bug] = status_of(raw)
    return out


def bug_numbers(value: Any) -> list[int]:
    """newest_bugs' and get_bugs' answer: bug numbers, ascending."""
    items = value if isinstance(value, list) else [] if value in (None, "") else [value]
    numbers = [_opt_int(b) if not isinstance(b, bool | float) else None for b in items]
    if any(n is None for n in numbers):
        raise SoapError(f"expected bug numbers, got {str(value)[:80]!r}")
    return sorted(n for n in numbers if n is not None)


def bug_log(value: Any) -> list[dict[str, Any]]:
    """get_bug_log's answer: its records (see log_record), oldest first."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise SoapError(f"get_bug_log answered a {type(value).__name__}, not an array")
    return sorted((log_record(item) for item in value if isinstance(item, dict)), key=lambda r: r["msg_num"])


def read_answer(method: str, data: bytes) -> Any:
    """A response body -> what the client returns for `method` (sans-I/O:
    the client only posts and hands the body here).  SoapError when it is
    not a usable answer."""
    value = decode_response(data, method)
    if method == "get_status":
        return statuses_of(value)
    if method == "get_bug_log":
        return bug_log(value)
    if method in ("newest_bugs", "get_bugs"):
        return bug_numbers(value)
    return value


_RECEIVED_AT = re.compile(r"^Received: \(at ([^)\s]+)\)", re.M)
_MSGID = re.compile(r"<([^<>\s]+)>")


def log_record(item: Mapping[str, Any]) -> dict[str, Any]:
    """A get_bug_log item with what its header says: where debbugs received
    it (`received_at`: "submit", "979653", "979653-done", "control", ...),
    its Message-ID, From and Subject."""
    header = str(item.get("header") or "")
    parsed = HeaderParser().parsestr(header)
    m = _RECEIVED_AT.search(header)
    ids = _MSGID.findall(str(parsed.get("Message-ID") or ""))
    return {
        "msg_num": _opt_int(item.get("msg_num")) or 0,
        "received_at": m.group(1).lower() if m else None,
        "message_id": ids[0] if ids else None,
        "from": " ".join(str(parsed.get("From") or "").split()) or None,
        "subject": " ".join(str(parsed.get("Subject") or "").split()),
        "body": str(item.get("body") or ""),
    }

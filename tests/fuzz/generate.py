"""Structure-aware generators: documents that look like the real formats
(mails with random headers and MIME trees, deb822 stanzas, JSON with
random nesting, TOML with random tables and types, SOAP::Lite answers),
so that the parsers are exercised past their first checks.

Each returns a hypothesis strategy for the document's bytes (or text).
"""

from __future__ import annotations

import base64
import math
import quopri
from collections.abc import Sequence
from typing import Any

from hypothesis import strategies as st

# --- small pieces -------------------------------------------------------------

# Text that parsers meet in practice: names with accents, control
# characters, separators of the formats, lone surrogates' replacements.
_ALPHABET = st.characters(codec="utf-8", exclude_characters="\r\n")
words = st.text(_ALPHABET, max_size=24)
ascii_words = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7e), min_size=1, max_size=16)
numbers = st.one_of(st.integers(-5, 10**7), st.integers(), st.sampled_from([0, -1, 2**31, 2**63, 10**400]))


def pick(choices: Sequence[Any], other: st.SearchStrategy[Any] | None = None) -> st.SearchStrategy[Any]:
    """Mostly one of the known values, sometimes anything."""
    known = st.sampled_from(list(choices))
    return known if other is None else st.one_of(known, known, known, other)


_HEX = "0123456789abcdef"
oids = st.one_of(
    st.text(_HEX, min_size=40, max_size=40), st.text(_HEX, min_size=64, max_size=64),
    st.just("0" * 40), st.just("0" * 64), st.text(_HEX + "ABCDEFg", max_size=70),
)
_VERSION_CHARS = "0123456789abcdefghijklmnopqrstuvwxyz.+~"
# Mostly well formed (garbage comes from the mutations), sometimes anything.
_good_versions = st.tuples(
    st.sampled_from(["", "1:", "0:"]), st.text("0123456789", min_size=1, max_size=3),
    st.text(_VERSION_CHARS, max_size=8), st.sampled_from(["", "-1", "-0.1", "-3+deb12u1", "-"])).map("".join)
versions = st.one_of(_good_versions, _good_versions, _good_versions, words)
_good_names = st.tuples(st.sampled_from("abcdefghijklmnopqrstuvwxyz0123456789"),
                        st.text("abcdefghijklmnopqrstuvwxyz0123456789.+-", min_size=1, max_size=12)).map("".join)
package_names = st.one_of(_good_names, _good_names, _good_names, words)


# --- JSON ----------------------------------------------------------------------

def json_values(keys: Sequence[str] = (), strings: Sequence[str] = (), max_leaves: int = 5) -> st.SearchStrategy[Any]:
    """Any JSON value (NaN and the infinities included, as json.loads
    accepts them), keys and strings often from the format's vocabulary."""
    scalars = st.one_of(
        st.none(), st.booleans(), numbers, st.floats(), words,
        *(st.sampled_from(list(strings)),) if strings else (),
    )
    key = st.one_of(st.sampled_from(list(keys)), words) if keys else words
    return st.recursive(
        scalars,
        lambda inner: st.one_of(st.lists(inner, max_size=5), st.dictionaries(key, inner, max_size=6)),
        max_leaves=max_leaves,
    )


# --- mail ------------------------------------------------------------------------

_CHARSETS = ("utf-8", "us-ascii", "iso-8859-1", "windows-1252", "utf-16", "utf-7", "x-unknown", "", "utf8",
             "koi8-r", "gb2312", "bogus charset")
_CTES = ("7bit", "8bit", "quoted-printable", "base64", "binary", "x-uuencode", "", "BASE64 ")


def encoded_word(text: str, charset: str, b: bool) -> str:
    raw = text.encode("utf-8")
    if b:
        return f"=?{charset}?b?{base64.b64encode(raw).decode()}?="
    return f"=?{charset}?q?{quopri.encodestring(raw, header=True).decode()}?="


def _header_value(draw: st.DrawFn, known: st.SearchStrategy[str]) -> str:
    value = draw(known)
    how = draw(_SIX)
    if how == 1:  # RFC 2047, sometimes with a charset nobody knows
        value = encoded_word(value, draw(_CHARSET), draw(st.booleans()))
    elif how == 2:  # folded
        cut = draw(st.integers(0, len(value)))
        value = value[:cut] + "\n " + value[cut:]
    return value


_SIX = st.integers(0, 5)
_CHARSET = st.sampled_from(_CHARSETS)
_CTE = st.sampled_from(_CTES)
_BOUNDARY = st.one_of(st.just("=-=-="), ascii_words)
_MULTIPART = st.sampled_from(["mixed", "signed", "alternative", "related", "report"])
_LEAF_TYPE = st.sampled_from(["text/plain", "text/plain", "text/html", "application/pgp-signature",
                              "application/octet-stream", "text/x-diff", "text/plain; format=flowed"])
_PREAMBLE = st.sampled_from(["", "This is a MIME message.\n"])
_PARTS = st.integers(0, 3)


def _mime_part(draw: st.DrawFn, body: st.SearchStrategy[str], depth: int = 0) -> bytes:
    """One MIME entity: headers, blank line, payload; multipart ones nest."""
    kind = draw(_SIX) if depth < 3 else draw(_SIX) % 2
    if kind >= 4:  # multipart
        boundary = draw(_BOUNDARY)
        subtype = draw(_MULTIPART)
        parts = [_mime_part(draw, body, depth + 1) for _ in range(draw(_PARTS))]
        head = f'Content-Type: multipart/{subtype}; boundary="{boundary}"\n'
        if subtype == "signed" and draw(st.booleans()):
            head += 'Content-Type: multipart/signed; micalg=pgp-sha256; protocol="application/pgp-signature"\n'
        close = f"--{boundary}--\n" if draw(st.booleans()) else ""
        return (head + "\n" + draw(_PREAMBLE)).encode() + b"".join(
            f"--{boundary}\n".encode() + p + b"\n" for p in parts) + close.encode()
    if kind == 3:  # an attached message (debbugs and dak attach the mail they answer)
        inner = _mime_part(draw, body, depth + 1)
        return b"Content-Type: message/rfc822\n\nFrom: someone@example.org\nSubject: inner\n" + inner
    ctype, charset, cte, text = draw(_LEAF_TYPE), draw(_CHARSET), draw(_CTE), draw(body)
    try:
        raw = text.encode(charset) if charset else text.encode()
    except (LookupError, UnicodeEncodeError):
        raw = text.encode("utf-8", "surrogatepass")
    if cte.strip().lower() == "base64" and draw(st.booleans()):
        raw = base64.encodebytes(raw)
    elif cte == "quoted-printable" and draw(st.booleans()):
        raw = quopri.encodestring(raw)
    head = f"Content-Type: {ctype}; charset={charset}\n" if charset else f"Content-Type: {ctype}\n"
    if cte:
        head += f"Content-Transfer-Encoding: {cte}\n"
    return head.encode() + b"\n" + raw


_EXTRA_HEADERS = st.lists(st.tuples(ascii_words.filter(lambda n: ":" not in n), words), max_size=1)


def mails(headers: dict[str, st.SearchStrategy[str]], body: st.SearchStrategy[str],
          required: Sequence[str] = ()) -> st.SearchStrategy[bytes]:
    """Mails with the `required` headers (now and then one missing) and others
    mostly from `headers` (name -> likely values), in random order, some
    twice, then a MIME body."""
    chosen = st.lists(st.sampled_from(list(headers)), max_size=4)
    order = st.permutations(list(required))
    drop = st.integers(0, 8 * len(required))
    values = {n: st.one_of(v, v, v, words) for n, v in headers.items()}

    @st.composite
    def mail(draw: st.DrawFn) -> bytes:
        names = draw(order)
        gone = draw(drop) - 7 * len(names) - 1  # hypothesis favours small numbers: keep them all then
        if gone >= 0:
            del names[gone]
        lines = [f"{n}: {_header_value(draw, values[n])}" for n in names + draw(chosen)]
        lines += [f"{n}: {v}" for n, v in draw(_EXTRA_HEADERS)]
        head = "\n".join(lines).encode("utf-8", "surrogatepass")
        if draw(st.booleans()):
            return head + b"\nMIME-Version: 1.0\n" + _mime_part(draw, body)
        return head + b"\n\n" + draw(body).encode("utf-8", "surrogatepass")

    return mail()


# --- deb822 ------------------------------------------------------------------

_FOLD = st.integers(0, 3)


def deb822(fields: dict[str, st.SearchStrategy[str]], required: Sequence[str] = ()) -> st.SearchStrategy[str]:
    """deb822 stanzas: the `required` fields (now and then one missing) and
    others of `fields`, in random order, some twice, values folded over lines."""
    others = st.lists(st.sampled_from(list(fields)), max_size=3)
    order = st.permutations(list(required))
    drop = st.integers(0, 8 * len(required))

    @st.composite
    def stanza(draw: st.DrawFn) -> str:
        names = draw(order)
        gone = draw(drop) - 7 * len(names) - 1  # hypothesis favours small numbers: keep them all then
        if gone >= 0:
            del names[gone]
        out = []
        for name in names + draw(others):
            value = draw(fields[name])
            if draw(_FOLD) == 0:
                out.append(f"{name}:")
                out += [" " + line if line.strip() else " ." for line in value.split("\n")]
            else:
                out.append(f"{name}: " + value.replace("\n", "\n "))
        return "\n".join(out) + "\n"

    return stanza()


_SHAPE = st.integers(0, 9)
_SIGNATURE = st.binary(max_size=120).map(lambda b: base64.b64encode(b).decode())


def clearsigned(text: st.SearchStrategy[str]) -> st.SearchStrategy[bytes]:
    """Documents in OpenPGP clearsign armour, or in one of the ways that
    armour arrives broken (no signature, no end, text before it)."""

    @st.composite
    def document(draw: st.DrawFn) -> bytes:
        body = draw(text)
        if draw(st.booleans()):
            body = "\n".join("- " + line if line.startswith("-") else line for line in body.split("\n"))
        sig = draw(_SIGNATURE)
        shape = draw(_SHAPE)  # below 5: well formed (hypothesis favours small numbers)
        head = "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\n"
        tail = f"-----BEGIN PGP SIGNATURE-----\n\n{sig}\n-----END PGP SIGNATURE-----\n"
        if shape == 5:
            return body.encode("utf-8", "surrogatepass")
        if shape == 6:
            tail = f"-----BEGIN PGP SIGNATURE-----\n\n{sig}\n"
        elif shape == 7:
            tail = ""
        elif shape == 8:
            head = "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n"
        elif shape == 9:
            head = "garbage before\n" + head
        return (head + body + "\n" + tail).encode("utf-8", "surrogatepass")

    return document()


# --- TOML ------------------------------------------------------------------------

def _toml_key(key: str) -> str:
    bare = key and all(c.isascii() and (c.isalnum() or c in "-_") for c in key)
    return key if bare else _toml_string(key)


def _toml_string(text: str) -> str:
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7f or 0xd800 <= ord(ch) <= 0xdfff:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_toml_key(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    return str(value)  # dates and times: TOML literals as they print


def toml_scalars(strings: Sequence[str] = ()) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.booleans(), st.integers(), st.sampled_from([0, -1, 2**63 - 1, 10**30]), st.floats(),
        words, *(st.sampled_from(list(strings)),) if strings else (),
        st.datetimes(), st.dates(), st.times(),
    )


def toml_documents(tables: dict[str, dict[str, st.SearchStrategy[Any]]],
                   strings: Sequence[str] = ()) -> st.SearchStrategy[bytes]:
    """TOML files: [tables] and [[arrays of tables]] named mostly as the
    configuration's, keys mostly known ones with values mostly of their
    type (`tables`: table -> key -> values), else of any TOML type."""
    scalar = toml_scalars(strings)
    # Nesting is shallow here (recursive strategies cost most of the drawing):
    # the mutations nest deeply.
    value = st.one_of(scalar, scalar, scalar, st.lists(scalar, max_size=3), st.dictionaries(words, scalar, max_size=2))
    known = st.sampled_from(list(tables))
    table_names = st.one_of(known, known, known, known, words, st.sampled_from([f"{t}.x" for t in tables]))
    keys = {name: st.one_of(st.sampled_from(list(known)), st.sampled_from(list(known)), words) if known else words
            for name, known in tables.items()}
    typed = {name: {k: st.one_of(v, v, v, value) for k, v in known.items()} for name, known in tables.items()}
    counts = st.integers(0, 5)

    @st.composite
    def document(draw: st.DrawFn) -> bytes:
        out = [f"{_toml_key(draw(words))} = {toml_value(draw(value))}"  # now and then a key before any table
               for _ in range(draw(counts) // 5)]
        declared = set()
        for _ in range(draw(counts)):
            name = draw(table_names)
            array = (name == "signer") != (draw(counts) == 5)  # [[signer]], and now and then the other way
            if name in declared and not array and draw(counts) != 5:  # TOML refuses a table twice
                continue
            declared.add(name)
            header = ".".join(_toml_key(p) for p in name.split("."))
            out.append(f"[[{header}]]" if array else f"[{header}]")
            seen = set()
            for _ in range(draw(counts)):
                key = draw(keys.get(name, words))
                if key in seen and draw(counts) != 5:  # TOML refuses a key twice; now and then try it
                    continue
                seen.add(key)
                out.append(f"{_toml_key(key)} = {toml_value(draw(typed.get(name, {}).get(key, value)))}")
        return "\n".join(out).encode("utf-8", "surrogatepass") + b"\n"

    return document()


# --- XML (SOAP::Lite answers) ---------------------------------------------------

_XSI_TYPES = ("xsd:int", "xsd:string", "xsd:base64Binary", "soapenc:Array", "apachens:Map", "xsd:float",
              "xsd:double", "xsd:boolean", "xsd:long", "xsd:anyURI", "", "xsd:decimal", "xsd:short", "ns:Map")


def _xml_text(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_XSI_TYPE = st.sampled_from(_XSI_TYPES)
_NIL = st.integers(0, 15)
_ITEMS = st.integers(0, 4)
_KEYED = st.integers(0, 9)
_FLOAT_TEXT = st.one_of(st.floats().map(repr), words, st.sampled_from(["NaN", "INF", "1e400"]))
_INT_TEXT = st.one_of(numbers.map(str), words)
_BASE64_TEXT = st.one_of(st.binary(max_size=40).map(lambda b: base64.b64encode(b).decode()), words)


def _soap_value(draw: st.DrawFn, name: str, keys: st.SearchStrategy[str], depth: int = 0) -> str:
    kind = draw(_XSI_TYPE)
    attr = f' xsi:type="{kind}"' if kind else ""
    if draw(_NIL) == 0:
        return f'<{name} xsi:nil="true"{attr}/>'
    if kind == "soapenc:Array" and depth < 6:
        items = [_soap_value(draw, "item", keys, depth + 1) for _ in range(draw(_ITEMS))]
        return f'<{name}{attr} soapenc:arrayType="xsd:anyType[{len(items)}]">{"".join(items)}</{name}>'
    if kind.endswith("Map") and depth < 6:
        items = []
        for _ in range(draw(_ITEMS)):
            key, val = draw(keys), _soap_value(draw, "value", keys, depth + 1)
            items.append(f'<item><key xsi:type="xsd:string">{_xml_text(key)}</key>{val}</item>'
                         if draw(_KEYED) else f"<item>{val}</item>")
        return f"<{name}{attr}>{''.join(items)}</{name}>"
    if not kind and depth < 6 and draw(st.booleans()):  # an untyped struct
        children = [_soap_value(draw, _xml_name(draw(keys)), keys, depth + 1) for _ in range(draw(_ITEMS) % 4)]
        return f"<{name}>{''.join(children)}</{name}>"
    if kind == "xsd:base64Binary":
        text = draw(_BASE64_TEXT)
    elif kind in ("xsd:int", "xsd:long", "xsd:short"):
        text = draw(_INT_TEXT)
    elif kind in ("xsd:float", "xsd:double", "xsd:decimal"):
        text = draw(_FLOAT_TEXT)
    else:
        text = draw(words)
    return f"<{name}{attr}>{_xml_text(text)}</{name}>"


def _xml_name(key: str) -> str:
    return key if key.isidentifier() else "x"


def soap_answers(methods: Sequence[str], keys: Sequence[str]) -> st.SearchStrategy[tuple[str, bytes]]:
    """(method, a SOAP::Lite response body) for a method of the client."""
    method = st.sampled_from(list(methods))
    answered = st.one_of(st.sampled_from(list(methods)), ascii_words)
    key = st.one_of(st.sampled_from(list(keys)), st.integers(-2, 10**6).map(str), words)
    values = st.integers(0, 2)

    @st.composite
    def answer(draw: st.DrawFn) -> tuple[str, bytes]:
        asked = draw(method)
        replied = asked if draw(_KEYED) else draw(answered)
        if draw(_KEYED) == 0:
            inner = (f"<soap:Fault><faultcode>{_xml_text(draw(words))}</faultcode><faultstring>"
                     f"{_xml_text(draw(words))}</faultstring></soap:Fault>")
        else:
            found = "".join(_soap_value(draw, "s-gensym3", key) for _ in range(draw(values)))
            inner = f'<{replied}Response xmlns="urn:Debbugs/SOAP">{found}</{replied}Response>'
        doc = ('<?xml version="1.0" encoding="UTF-8"?><soap:Envelope '
               'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
               'xmlns:soapenc="http://schemas.xmlsoap.org/soap/encoding/" '
               'xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:apachens="http://xml.apache.org/xml-soap" '
               'soap:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/" '
               'xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">'
               f"<soap:Body>{inner}</soap:Body></soap:Envelope>")
        return asked, doc.encode("utf-8", "surrogatepass")

    return answer()

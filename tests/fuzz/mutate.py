"""Mutations of real samples, as hypothesis strategies.

A mutant is drawn as a short recipe (operation, position, argument) that is
applied to one sample, not as the mutated bytes themselves: drawing stays
cheap for a 50 KB mail, and hypothesis shrinks a failure to the fewest and
simplest operations that still make the parser fail.

The operations are the usual ones of mutation fuzzers (byte flips,
truncation, splicing of another sample, dictionary tokens) plus those that
break text formats in the ways real input does: duplicated header lines,
CRLF and lone CR, other encodings, huge values, deep nesting, NUL bytes and
invalid UTF-8.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

_REPEATS = (2, 16, 256, 4096, 65536, 1 << 20)
_INVALID_UTF8 = (b"\xff", b"\xfe\xff", b"\xc3", b"\xc3\x28", b"\xe2\x82", b"\xed\xa0\x80", b"\xf4\x90\x80\x80",
                 b"\xc0\xaf", b"\x80", b"\xef\xbb\xbf")
_NUMBERS = (b"0", b"-1", b"-0", b"00", b"1e999", b"-1e999", b"NaN", b"Infinity", b"4294967296",
            b"18446744073709551616", b"9" * 30, b"9" * 5000, b"1.5", b"0x10", b"\xd9\xa3", b"+1", b" 1")
_NEWLINES = (b"\r\n", b"\r", b"\n\r", b"", b"\n\n", b"\xc2\x85", b"\xe2\x80\xa8", b"\x0b", b"\x0c")
_ENCODINGS = ("utf-16", "utf-16-be", "utf-32", "latin-1", "cp1252", "utf-7", "utf-8-sig", "cp500", "mojibake")
_SPACES = (b" ", b"\t", b"\n ", b"\n\t", b"  ", b"\r\n ", b"\xc2\xa0")


@dataclass(frozen=True)
class Corpus:
    """Real samples of one format and what to mutate them with."""

    samples: tuple[bytes, ...]
    # Words of the format (header names, keywords, markers), AFL's dictionary.
    tokens: tuple[bytes, ...] = ()
    # (opener, closer) pairs whose repetition nests deeply in this format.
    nesting: tuple[tuple[bytes, bytes], ...] = ((b"(", b")"), (b"[", b"]"), (b"{", b"}"), (b"<a>", b"</a>"))
    # Other samples to splice in (a .changes into a mail, say).
    splice: tuple[bytes, ...] = field(default=())
    # The most a huge value or a deep nesting adds: enough for the format's
    # own bounds (the bus has a 1 MiB frame limit), small enough for speed.
    huge: int = 1 << 18


def _pos(data: bytes | list[bytes], n: int) -> int:
    return n % (len(data) + 1)


def _insert(data: bytes, at: int, chunk: bytes) -> bytes:
    p = _pos(data, at)
    return data[:p] + chunk + data[p:]


def _lines(data: bytes) -> list[bytes]:
    return data.split(b"\n")


def _flip(data: bytes, at: int, arg: int, c: Corpus) -> bytes:
    if not data:
        return bytes([arg % 256])
    p = at % len(data)
    return data[:p] + bytes([data[p] ^ (1 + arg % 255)]) + data[p + 1:]


def _set_byte(data: bytes, at: int, arg: int, c: Corpus) -> bytes:
    if not data:
        return data
    p = at % len(data)
    special = b"\x00\xff\x80\n\r :<>\"\\=%#-."
    return data[:p] + special[arg % len(special):][:1] + data[p + 1:]


def _truncate(data: bytes, at: int, arg: int, c: Corpus) -> bytes:
    return data[:_pos(data, at)]


def _cut(data: bytes, at: int, arg: int, c: Corpus) -> bytes:
    p = _pos(data, at)
    return data[:p] + data[p + 1 + arg % 512:]


def _token(data: bytes, at: int, arg: int, c: Corpus) -> bytes:
    words = c.tokens or (b":",)
    return _insert(data, at, words[arg % len(words)])


def _splice(data: bytes, at: int, arg: int, c: Corpus) -> bytes:
    """This sample's head, another sample's tail (or a chunk of it inserted)."""
    others = c.splice + c.samples
    other = others[arg % len(others)]
    q = (arg // len(others)) % (len(other) + 1)
    if arg & 1 << 20:
        return _insert(data, at, other[q:q + 1 + (arg >> 8) % 4096])
    return data[:_pos(data, at)] + other[q:]


def _dup_line(data: bytes, at: int, arg: int, c: Corpus) -> bytes:
    lines = _lines(data)
    i = at % len(lines)
    lines[i:i] = [lines[i]] * (1 + arg % 8)
    return b"\n".join(lines)


def _dup_header(data: bytes, at: int, arg: int, c: Corpus) -> bytes:
    """A line of the header block (up to the first empty line) again,
    somewhere else in the header block."""
    end = data.find(b"\n\n")
    head, rest = (data, b"") if end < 0 else (data[:end], data[end:])
    lines = _lines(head)
    line = lines[at % len(lines)]
    lines.insert(arg % (len(lines) + 1), line)
    return b"\n".join(lines) + rest


def _drop_line(data: bytes, at: int, arg: int, c: Corpus) -> bytes:
    lines = _lines(data)
    del lines[at % len(lines)]
    return b"\n".join(lines)


def _swap_lines(data: bytes, at: int, arg: int, c: Corpus) -> bytes:
    lines = _lines(data)
    i, j = at % len(lines), arg % len(lines)
    lines[i], lines[j] = lines[j], lines[i]
    return b"\n".join(lines)


def _newlines(data: bytes, at: int, arg: int, c: Corpus) -> bytes:
    new = _NEWLINES[arg % len(_NEWLINES)]
    if at & 1:  # only from a point on, as a mail that went through two MTAs
        p = _pos(data, at)
        return data[:p] + data[p:].replace(b"\n", new)
    return data.replace(b"\n", new)


def _reencode(data: bytes, at: int, arg: int, c: Corpus) -> bytes:
    encoding = _ENCODINGS[arg % len(_ENCODINGS)]
    text = data.decode("utf-8", "replace")
    if encoding == "mojibake":  # UTF-8 read as Latin-1 and written as UTF-8 again
        return data.decode("latin-1").encode("utf-8")
    return text.encode(encoding, "replace")


def _repeat(data: bytes, at: int, arg: int, c: Corpus) -> bytes:
    """A huge value: a token, or a piece of the sample, many times over."""
    words = c.tokens or (b"A",)
    unit = words[arg % len(words)] if arg & 1 else data[_pos(data, at):][:1 + arg % 64] or b"A"
    count = _REPEATS[(arg >> 7) % len(_REPEATS)]
    return _insert(data, at, (unit * count)[:c.huge])


def _nest(data: bytes, at: int, arg: int, c: Corpus) -> bytes:
    opener, closer = c.nesting[arg % len(c.nesting)]
    depth = _REPEATS[(arg >> 5) % len(_REPEATS)]
    deep = (opener * depth)[:c.huge]
    if arg & 16:
        deep += (closer * depth)[:c.huge]
    return _insert(data, at, deep)


def _nul(data: bytes, at: int, arg: int, c: Corpus) -> bytes:
    return _insert(data, at, b"\0" * (1 + arg % 16))


def _bad_utf8(data: bytes, at: int, arg: int, c: Corpus) -> bytes:
    return _insert(data, at, _INVALID_UTF8[arg % len(_INVALID_UTF8)])


def _number(data: bytes, at: int, arg: int, c: Corpus) -> bytes:
    runs = [m.span() for m in re.finditer(rb"\d+", data)]
    new = _NUMBERS[arg % len(_NUMBERS)]
    if not runs:
        return _insert(data, at, new)
    start, end = runs[at % len(runs)]
    return data[:start] + new + data[end:]


def _case(data: bytes, at: int, arg: int, c: Corpus) -> bytes:
    p = _pos(data, at)
    return data[:p] + data[p:p + 1 + arg % 64].swapcase() + data[p + 1 + arg % 64:]


def _space(data: bytes, at: int, arg: int, c: Corpus) -> bytes:
    return _insert(data, at, _SPACES[arg % len(_SPACES)])


OPERATIONS: tuple[Callable[[bytes, int, int, Corpus], bytes], ...] = (
    _flip, _set_byte, _truncate, _cut, _token, _splice, _dup_line, _dup_header, _drop_line, _swap_lines,
    _newlines, _reencode, _repeat, _nest, _nul, _bad_utf8, _number, _case, _space,
)
# One integer per step (operation, position, argument packed: fewer draws
# make drawing faster); it shrinks towards operation 0 at position 0.
_STEP = st.integers(0, (1 << 53) - 1)


def apply(data: bytes, steps: Sequence[int], corpus: Corpus) -> bytes:
    for step in steps:
        op, at, arg = step % len(OPERATIONS), (step >> 5) & 0xFFFFFF, step >> 29
        data = OPERATIONS[op](data, at, arg, corpus)
    return data


def mutants(corpus: Corpus, base: st.SearchStrategy[bytes] | None = None,
            max_steps: int = 6) -> st.SearchStrategy[bytes]:
    """Byte-level mutants of the corpus' samples (or of what `base` draws:
    generated documents get the same treatment)."""
    if not corpus.samples:
        raise ValueError("a corpus needs at least one sample")
    start = base if base is not None else st.sampled_from(corpus.samples)
    return st.builds(lambda data, steps: apply(data, steps, corpus),
                     start, st.lists(_STEP, max_size=max_steps))


# --- JSON, mutated as a tree ---------------------------------------------------

def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*prefix, i))
    return out


def _replace(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {**value, head: _replace(value[head], rest, new)}
    copy = list(value)
    copy[head] = _replace(value[head], rest, new)
    return copy


def _delete(value: Any, path: tuple[Any, ...]) -> Any:
    if len(path) == 1:
        if isinstance(value, dict):
            return {k: v for k, v in value.items() if k != path[0]}
        return value[:path[0]] + value[path[0] + 1:]
    head = path[0]
    if isinstance(value, dict):
        return {**value, head: _delete(value[head], path[1:])}
    copy = list(value)
    copy[head] = _delete(value[head], path[1:])
    return copy


def _get(value: Any, path: tuple[Any, ...]) -> Any:
    for p in path:
        value = value[p]
    return value


@st.composite
def json_mutants(draw: st.DrawFn, documents: st.SearchStrategy[Any], values: st.SearchStrategy[Any],
                 keys: st.SearchStrategy[str], max_edits: int = 3) -> Any:
    """A good JSON document (a real one, or a generated valid one) with a
    few nodes replaced, removed, retyped or given new keys, as a decoded
    value; sometimes with no edit at all."""
    doc = draw(documents)
    for _ in range(draw(st.integers(0, max_edits))):
        paths = _paths(doc)
        path = paths[draw(st.integers(0, len(paths) - 1))]
        node = _get(doc, path)
        edit = draw(st.integers(0, 4))
        if edit == 0 or not path and edit == 1:
            doc = _replace(doc, path, draw(values))
        elif edit == 1:
            doc = _delete(doc, path)
        elif edit == 2 and isinstance(node, dict):
            doc = _replace(doc, path, {**node, draw(keys): draw(values)})
        elif edit == 3:  # the same content, another type
            retyped = [str(node), [node], {"value": node}, None, 0 if node else 1]
            doc = _replace(doc, path, retyped[draw(st.integers(0, len(retyped) - 1))])
        else:
            doc = _replace(doc, path, draw(values))
    return doc


def dumps(value: Any) -> bytes:
    """JSON text as a peer might send it (NaN and all)."""
    return json.dumps(value, ensure_ascii=False, allow_nan=True).encode("utf-8", "surrogatepass")

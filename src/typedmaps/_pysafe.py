"""Names and literals for generated Python code: every C name is data, never code.

``typedmaps gen`` writes a Python module whose names come from BTF (struct,
union, enum, enumerator, field and map names) and from the command line (the
object's file name). Any of those may hold anything: keywords, builtins,
``__dunder__`` names, quotes, newlines, backslashes, NUL, invalid UTF-8
(already replaced by U+FFFD when BTF is decoded), or Unicode that Python's
parser would NFKC-normalise into another identifier. This module is the one
place that turns such text into

- **identifiers** (:func:`identifier`, :class:`Scope`): ASCII only
  (``[A-Za-z0-9_]``), so no two different outputs can mean the same name
  after NFKC normalisation; never a keyword, soft keyword, builtin, name the
  scope reserves, ``__dunder__``/``_sunder_`` or ``__private`` name, never
  empty, never ``l``/``O``/``I`` (ruff's E741), at most :data:`MAX_IDENT`
  characters; collisions resolved deterministically, in the order names are
  claimed;
- **string literals** (:func:`literal`): ASCII, every non-printable or
  non-ASCII character escaped, in the quote style ``ruff format`` keeps;
- **docstring and comment text** (:func:`c_quote`, :func:`doc_text`,
  :func:`comment_lines`): printable ASCII that cannot end a docstring or a
  comment early, wrapped to stay within the line length.

The mapping, as documented for users in docs/btf.md:

- a name that is fine is kept (``flow_key`` field ``saddr`` stays ``saddr``);
- characters outside ``[A-Za-z0-9_]`` become ``_`` (after NFKC, so ``ﬁ``
  becomes ``fi``); an empty result becomes ``unnamed``;
- a leading digit, a name of underscores only, ``__x``, ``__x__`` and
  ``_x_`` get the scope's lead letter in front (``__pad`` -> ``f__pad``);
- a keyword, soft keyword, builtin or reserved name gets ``_`` appended
  (``from`` -> ``from_``, ``bytes`` -> ``bytes_``, ``type`` -> ``type_``);
- a name already taken gets ``_2``, ``_3``, ... (the first claimant keeps
  the plain name);
- a name longer than :data:`MAX_IDENT` is cut and ends in ``_`` plus eight
  hex digits of a hash of the whole C name.
"""

from __future__ import annotations

import builtins
import enum
import hashlib
import keyword
import re
import unicodedata
from collections.abc import Iterable
from typing import Final

__all__ = [
    "BUILTIN_NAMES",
    "ENUM_RESERVED",
    "MAX_IDENT",
    "PYTHON_RESERVED",
    "Scope",
    "c_quote",
    "camel_identifier",
    "comment_lines",
    "doc_lines",
    "doc_text",
    "identifier",
    "is_plain_c_name",
    "literal",
]

#: Longest identifier written; longer C names are cut and get a hash suffix.
MAX_IDENT: Final = 48

#: Every name of the builtins module (``int``, ``bytes``, ``type``, ``id``, ...).
BUILTIN_NAMES: Final = frozenset(dir(builtins))

#: Names no generated identifier may take in any scope: keywords, soft
#: keywords, builtins, and ruff's ambiguous single letters (E741/E742/E743).
PYTHON_RESERVED: Final = frozenset(
    set(keyword.kwlist) | set(keyword.softkwlist) | BUILTIN_NAMES | {"l", "O", "I"}
)

#: Names an ``enum.IntEnum`` member cannot take: ``mro`` and the names the
#: enum machinery and ``int`` itself define (a member ``real`` would hide
#: ``int.real`` on every member).
ENUM_RESERVED: Final = frozenset(
    {"mro", "name", "value"}
    | {n for n in dir(enum.IntEnum) if not n.startswith("__")}
    | {n for n in dir(int) if not n.startswith("__")}
)

_PLAIN_C = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_NOT_IDENT = re.compile(r"[^A-Za-z0-9_]")
_WORDS = re.compile(r"[A-Za-z0-9]+")


def is_plain_c_name(name: str) -> bool:
    """Whether ``name`` is an ASCII C identifier (shown bare in docs and comments)."""
    return _PLAIN_C.match(name) is not None


def _needs_lead(s: str) -> bool:
    """Names Python treats specially in class bodies: mangled, dunder, sunder."""
    if s.strip("_") == "" or s[0].isdigit():
        return True
    if s.startswith("__"):
        return True  # __x is name-mangled in a class body; __x__ is a dunder
    return len(s) > 1 and s.startswith("_") and s.endswith("_")  # _sunder_


def _cut(s: str, c_name: str) -> str:
    if len(s) <= MAX_IDENT:
        return s
    digest = hashlib.sha256(c_name.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return s[: MAX_IDENT - 9] + "_" + digest


def _ascii(name: str) -> str:
    return _NOT_IDENT.sub("_", unicodedata.normalize("NFKC", name))


def identifier(name: str, *, lead: str = "x", empty: str = "unnamed") -> str:
    """The ASCII identifier stem of a C name, before any scope is consulted.

    Args:
        name: the C name, any text.
        lead: the letter put in front of names that start with a digit or
            are ``__private``, ``__dunder__`` or ``_sunder_``.
        empty: what an empty name becomes.

    >>> identifier("from"), identifier("a-b"), identifier("__pad", lead="f")
    ('from', 'a_b', 'f__pad')
    """
    s = _ascii(name) or empty
    if _needs_lead(s):
        s = lead + s
    return _cut(s, name)


def camel_identifier(name: str, *, empty: str = "Anon") -> str:
    """A CamelCase ASCII class-name stem: ``wide_key`` -> ``WideKey``, ``__u32`` -> ``U32``.

    Digits and inner capitals are kept; a leading digit gets a ``T``.
    """
    norm = unicodedata.normalize("NFKC", name)
    out = "".join(p[:1].upper() + p[1:] for p in _WORDS.findall(norm))
    if not out:
        out = empty
    if out[0].isdigit():
        out = "T" + out
    return _cut(out, name)


class Scope:
    """One namespace of generated names (a module, a class body, an enum body).

    Names are handed out in the order they are claimed, so the result
    depends only on the input. A claimed name is never a reserved one.

    Args:
        reserved: names this scope must not hand out besides
            :data:`PYTHON_RESERVED` (the module's imports and helpers, the
            names a class body looks up, ...).
        lead: see :func:`identifier`.
    """

    def __init__(self, reserved: Iterable[str] = (), *, lead: str = "x") -> None:
        self.lead = lead
        self._reserved = set(PYTHON_RESERVED)
        self._reserved.update(reserved)
        self._taken: set[str] = set()

    def __contains__(self, name: object) -> bool:
        return name in self._taken or name in self._reserved

    def reserve(self, *names: str) -> None:
        """Keep ``names`` out of this scope from now on (they are not handed out)."""
        self._reserved.update(names)

    def take(self, name: str) -> str:
        """Mark an already safe, generated ``name`` as used and return it.

        Raises:
            ValueError: the name is taken or reserved (a bug in the caller).
        """
        if name in self:
            raise ValueError(f"generated name {name!r} is already taken")
        self._taken.add(name)
        return name

    def claim(self, c_name: str, *alternatives: str) -> str:
        """A fresh identifier for ``c_name``.

        Tries the identifier of ``c_name``; if it is reserved, that name with
        ``_`` appended (PEP 8's ``class_``); then each of ``alternatives``
        (already identifiers, e.g. ``"FooStruct"``); then ``_2``, ``_3``, ...
        after the last one tried.
        """
        stem = identifier(c_name, lead=self.lead)
        return self._first_free(stem, alternatives)

    def claim_class(self, c_name: str, *alternatives: str, empty: str = "Anon") -> str:
        """A fresh CamelCase class name for ``c_name`` (``wide_key`` -> ``WideKey``).

        A reserved or taken stem goes straight to ``alternatives`` (e.g.
        ``BitFieldStruct`` for ``struct bit_field``), then ``_2``, ``_3``, ...
        """
        stem = camel_identifier(c_name, empty=empty)
        return self._first_free(stem, alternatives, underscore=False)

    def claim_many(self, c_names: Iterable[str]) -> list[str]:
        """Claim identifiers for several C names at once (a record's members).

        Names that need no change are claimed first, in order, so that they
        keep their names; then the others, in order (``from`` after a member
        called ``from_`` becomes ``from_2``).
        """
        names = list(c_names)
        out: list[str | None] = [None] * len(names)
        for i, c in enumerate(names):
            if identifier(c, lead=self.lead) == c and c not in self:
                out[i] = self.take(c)
        for i, c in enumerate(names):
            if out[i] is None:
                out[i] = self.claim(c)
        return [n for n in out if n is not None]

    def fresh(self, stem: str) -> str:
        """A hidden helper name ``{stem}0``, ``{stem}1``, ... not yet used (e.g. ``_pad0``)."""
        n = 0
        while f"{stem}{n}" in self:
            n += 1
        return self.take(f"{stem}{n}")

    def _first_free(
        self, stem: str, alternatives: tuple[str, ...], *, underscore: bool = True
    ) -> str:
        tried = [stem]
        if underscore and stem in self._reserved:
            tried.append(stem + "_")
        tried += alternatives
        for cand in tried:
            if cand not in self:
                return self.take(cand)
        last = tried[-1].rstrip("_") or tried[-1]
        n = 2
        while f"{last}_{n}" in self:
            n += 1
        return self.take(f"{last}_{n}")


# ---------------------------------------------------------------------------- literals


def _escape_char(ch: str, quote: str) -> str:
    o = ord(ch)
    if ch == "\\":
        return "\\\\"
    if ch == quote:
        return "\\" + quote
    if 0x20 <= o < 0x7F:
        return ch
    if ch == "\n":
        return "\\n"
    if ch == "\t":
        return "\\t"
    if ch == "\r":
        return "\\r"
    if o <= 0xFF:
        return f"\\x{o:02x}"
    if o <= 0xFFFF:
        return f"\\u{o:04x}"
    return f"\\U{o:08x}"


def literal(text: str) -> str:
    """A Python string literal for ``text``: ASCII only, kept as is by ``ruff format``.

    Double quotes unless the text has more double than single quotes (as
    ruff and black choose); backslashes, the quote, control characters and
    every non-ASCII character are escaped (lower-case hex, as ruff writes
    them). Lone surrogates are escaped too, so the literal always evaluates
    back to ``text``.

    >>> literal('say "hi"\\n')
    '\\'say "hi"\\\\n\\''
    """
    quote = "'" if text.count('"') > text.count("'") else '"'
    return quote + "".join(_escape_char(c, quote) for c in text) + quote


_BARE: Final = re.compile(r"[A-Za-z0-9_.+@%,:/=-]+\Z")


def c_quote(name: str) -> str:
    """How a C name (or file name) is shown in docs and comments.

    Bare when it is made of ``[A-Za-z0-9_.+@%,:/=-]`` only (``wide_key``,
    ``zoo.bpf.o``); otherwise quoted as Python's ``ascii()`` would quote it,
    so quotes, backslashes, control and non-ASCII characters show as escapes
    and the result is printable ASCII.
    """
    if _BARE.match(name):
        return name
    quote = '"' if "'" in name and '"' not in name else "'"
    return quote + "".join(_escape_char(c, quote) for c in name) + quote


def _doc_atom(ch: str) -> str:
    if ch == "\\":
        return "\\\\"
    if ch == '"':
        return "\\x22"
    if " " <= ch <= "~":
        return ch
    return _escape_char(ch, '"').replace("\\", "\\\\")


def doc_text(text: str) -> str:
    """``text`` made safe for the inside of a ``\"\"\"`` docstring.

    The result is printable ASCII; a backslash becomes ``\\\\`` and a double
    quote ``\\x22`` (so no run of quotes can close the docstring), and other
    characters outside printable ASCII are shown as escapes. The docstring
    then reads as ``text``, with those characters written as escapes.
    """
    return "".join(_doc_atom(ch) for ch in text)


def doc_lines(text: str, width: int) -> list[str]:
    """:func:`doc_text` of ``text`` as lines of at most ``width`` characters.

    Lines break at spaces; a longer word is cut, but never inside an
    escape (which could make the docstring invalid).
    """
    return ["".join(line) for line in _wrap([_doc_atom(ch) for ch in text], width)]


def _wrap(atoms: list[str], width: int) -> list[list[str]]:
    words: list[list[str]] = [[]]
    for a in atoms:
        if a == " ":
            words.append([])
        else:
            words[-1].append(a)
    lines: list[list[str]] = []
    cur: list[str] = []
    cur_len = 0
    for word in words:
        wlen = sum(len(a) for a in word)
        if cur and cur_len + 1 + wlen <= width:
            cur += [" ", *word]
            cur_len += 1 + wlen
            continue
        if cur:
            lines.append(cur)
        cur, cur_len = [], 0
        for a in word:
            if cur and cur_len + len(a) > width:
                lines.append(cur)
                cur, cur_len = [], 0
            cur.append(a)
            cur_len += len(a)
    if cur or not lines:
        lines.append(cur)
    return lines


def comment_lines(text: str, indent: str = "", width: int = 76) -> list[str]:
    """``# text`` comment lines, wrapped to ``width``: no character can end a comment early.

    Characters outside printable ASCII (newlines, carriage returns, form
    feeds, Unicode line separators, ...) are written as escapes.
    """
    atoms = [ch if " " <= ch <= "~" else _escape_char(ch, "") for ch in text]
    return [
        f"{indent}# {''.join(line)}".rstrip()
        for line in _wrap(atoms, max(8, width - len(indent) - 2))
    ]

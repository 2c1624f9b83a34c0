"""`typedmaps gen` on hostile and awkward names: the output is data, never code.

A corpus of BTF built by hand puts each hostile name into every place a
name reaches the generated module: struct, union and enum names (class
names, docstrings, ``__c_name__``), enumerator and field names (identifiers
and comments), map names (``open_*`` functions and their docstrings, the
comment for maps without a wrapper), global variables and their section
names (the globals classes' members and comments, ``.data.<name>``), the
object's file name (the module docstring, the globals classes' names and
docstrings) and the names ``gen --type`` is given (ring-buffer style records
with a flexible tail, enums, and the schema constants named after them).
Names are batched many to a module. For every module:

- the module is imported in a fresh interpreter under an audit hook: no
  canary file appears (each payload would create it), no process, socket,
  file write or unexpected import happens, and ``sys.modules`` gains only
  the module itself;
- its AST holds nothing but the expected imports, ``__all__``, classes made
  of literal assignments and helper calls, ``open_*`` functions, schema
  constants, and the globals Protocols (annotations and ``...`` properties),
  their ``_GLOBALS`` table of literals and schemas and their two binders;
  every Protocol has one member per global variable of the BTF;
- every accessor works on a real kernel map: raw bytes written to the map
  decode to records whose keys hash, and encode back to the same bytes;
- mypy --strict, ruff check and ruff format --check pass (one run each over
  the whole directory).
"""

from __future__ import annotations

import ast
import json
import os
import random
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from typedmaps._gen_globals import is_data_section
from typedmaps.btf import Btf, Kind

from .btf_builder import BtfBuilder
from .conftest import ROOT, bpf_unavailable, need

VENV_BIN = Path(sys.executable).parent
CANARY_NAME = "canary"


def hostile_names(canary: Path) -> list[str | bytes]:
    """Names that try to break out of every context, and names that are merely awkward."""
    run = f"__import__('pathlib').Path({str(canary)!r}).touch()"
    return [
        # out of a docstring
        f'"""\n{run}\n"""',
        f"'''\n{run}\n'''",
        f'x"""{run}#',
        # out of a comment: every character Python or an editor ends a line at
        f"x\n{run}",
        f"x\r{run}",
        f"x\r\n{run}",
        f"x\x0c\n{run}",
        f"x\u2028{run}",
        f"x\x85{run}",
        f"x\x0b{run}",
        # out of a string literal
        f'x"; {run} #',
        f"x'; {run} #",
        f'x\\"; {run} #',
        f"x\\'; {run} #",
        "\\N{LATIN SMALL LETTER A}",
        "\\x4",
        "\\u12",
        "\\",
        "x\\",
        '"',
        "'",
        # as a name: code in an identifier
        run,
        f"a=1;{run}",
        # encoding cookies (only honoured on the first two lines)
        "# -*- coding: utf-7 -*-",
        "coding=latin-1",
        # NUL-free control and odd bytes, invalid UTF-8, bidi and NFKC tricks
        "\x01\x02\x1b[31m",
        b"\xff\xfe\x80abc",
        b"\xc3",
        "\u202egnp.exe",
        "\ufeffbom",
        "\uff43\uff53",  # fullwidth "cs": NFKC makes it the import name
        "ﬁeld",
        "\U0001d518\U0001d52b\U0001d526",  # fraktur "Uni"
        "é",
        "x" * 300,
        # Python's own names
        "",
        " ",
        "_",
        "__",
        "___",
        "__init__",
        "__class__",
        "__dict__",
        "_missing_",
        "__pad",
        "0day",
        "a-b",
        "a b",
        "match",
        "case",
        "type",
        "None",
        "True",
        "class",
        "from",
        "import",
        "lambda",
    ]


#: Names users' C code really has, and names of the module's own helpers.
C_STRUCT_NAMES = [
    "bit_field",
    "float32",
    "none",
    "typed_map",
    "cs",
    "open_int_enum",
    "frozen_dataclass_struct",
    "map_handle",
    "dataclass_mixin",
    "list_array",
    "char_bytes",
    "enum_int",
    "union_record",
    "value_error",
    "l",
    "o",
]
C_FIELD_NAMES = [
    "ip",
    "cs",
    "flags",
    "bytes",
    "str",
    "list",
    "tuple",
    "from",
    "from_",
    "int",
    "float",
    "bool",
    "self",
    "object",
    "_io",
    "_root",
    "_params",
    "_parsing",
    "_building",
    "_subcons",
    "_index",
    "MISSING",
    "_HAS_DEFAULT_FACTORY",
    "_pad0",
    "_end0",
    "_bits0",
    "csfield",
    "csfield_noinit",
    "dataclasses",
    "DataclassStruct",
    "OpenIntEnum",
    "BitFieldStruct",
    "l",
    "O",
    "I",
    "a",
    "_type_a",
    "_dflt_a",
    "__dataclass_self__",
    "__dataclass_fields__",
    "__c_name__",
    "field",
    "ﬁeld",
    "_",
    "type",
    "match",
]
#: Names of globals that a generated module or typing.Protocol uses itself.
GLOBAL_NAMES = [
    "ReservedNames",
    "BitFieldStruct",
    "Float32Struct",
    "NoneStruct",
    "Empty",
    "EmptyStruct",
    "property",
    "cast",
    "Protocol",
    "Any",
    "BpfObject",
    "bind_globals",
    "globals_of",
    "open_globals_of",
    "open_bit_field",
    "_GLOBALS",
    "_is_protocol",
    "_is_runtime_protocol",
    "_abc_impl",
    "__protocol_attrs__",
    "__slots__",
    "__init__",
    "__c_name__",
    "obj",
    "loaded",
    "Globals",
    "CNamesGlobals",
]
ENUMERATORS = [
    "mro",
    "_missing_",
    "name",
    "value",
    "_ignore_",
    "_order_",
    "_generate_next_value_",
    "_tag_",
    "_value_",
    "_name_",
    "__members__",
    "__init__",
    "__c_name__",
    "real",
    "to_bytes",
    "bit_length",
    "None",
    "A",
    "A",
    "",
    "_",
    "OpenIntEnum",
]


@dataclass
class MapCase:
    """A map of a corpus module and the raw bytes its round trip starts from."""

    name: str
    fn: str
    key_size: int
    value_size: int
    raw: list[tuple[str, str]]  # (key hex, value hex), padding zeroed


@dataclass
class Module:
    path: Path
    maps: list[MapCase]
    globals: int  # global variables the globals classes must have (static ones are not)


def _suffixed(name: str | bytes, suffix: str) -> str | bytes:
    return name + suffix.encode() if isinstance(name, bytes) else name + suffix


def _bundle(b: BtfBuilder, name: str | bytes, u8: int, u16: int, u32: int) -> tuple[int, int, int]:
    """Types that all carry ``name``: an enum (and enumerator), a union, a key and a value struct,
    and a ring-buffer style record ``<name>_ev`` ending in a flexible array.

    Returns (key type id, value type id, enum type id).
    """
    e = b.enum(name, [(name, 1), ("OTHER", 2)])
    u = b.struct_(name, 4, [(name, u32, 0), ("other", u16, 0)], union=True)
    chars = b.array(b.int_("char", 1, signed=True), 4)
    key = b.struct_(name, 12, [(name, e, 0), ("u", u, 32), ("c", chars, 64)])
    grid = b.array(b.array(u8, 3), 2)
    value = b.struct_(name, 44, [(name, key, 0), ("pair", b.array(key, 2), 96), ("g", grid, 288)])
    b.struct_(_suffixed(name, "_ev"), 4, [(name, e, 0), ("data", b.array(u8, 0), 32)])
    b.struct_(_suffixed(name, "_evs"), 4, [(name, u32, 0), ("keys", b.array(key, 0), 32)])
    return key, value, e


def _section(
    b: BtfBuilder, name: str | bytes, vars_: Sequence[tuple[str | bytes, int, int]]
) -> None:
    """A DATASEC of global variables: (name, type id, size), laid out one after another."""
    entries = []
    off = 0
    for vname, tid, size in vars_:
        linkage = 2 if name == ".kconfig" else 1
        entries.append((b.var(vname, tid, linkage), off, size))
        off += size
    b.datasec(name, entries, off)


def type_args(names: list[str | bytes]) -> list[str]:
    """``gen --type`` arguments for the names a command line can give (one word, text):
    each one's ``_ev`` and ``_evs`` records, and the first one's enum."""
    words = [n for n in names if isinstance(n, str) and n and n.split() == [n]]
    out: list[str] = []
    for name in words:
        out += ["--type", f"struct {name}_ev", "--type", f"{name}_evs"]
    return [*out, "--type", f"enum {words[0]}"] if words else out


def _corpus_btf(names: list[str | bytes]) -> BtfBuilder:
    b = BtfBuilder()
    u8 = b.int_("unsigned char", 1)
    u16 = b.int_("unsigned short", 2)
    u32 = b.int_("unsigned int", 4)
    defs: list[tuple[str | bytes, str | int, int, int, int]] = []
    data: list[tuple[str | bytes, int, int]] = []
    rodata: list[tuple[str | bytes, int, int]] = []
    for name in names:
        key, value, e = _bundle(b, name, u8, u16, u32)
        defs.append((name or "m", "hash", key, value, 4))  # a map (a VAR) needs a name
        data.append((name or "v", value, 44))
        rodata.append((name or "v", e, 4))
    b.maps(defs)
    _section(b, ".data", data)
    _section(b, ".rodata", rodata)
    _section(b, ".kconfig", [(n or "k", u32, 4) for n in names[:3]])
    for n in names[:3]:
        sec = b".data." + n if isinstance(n, bytes) else ".data." + n
        _section(b, sec, [(_suffixed(n, "_custom"), u32, 4)])
    return b


def _c_names_btf() -> BtfBuilder:
    """Real C names: helper-named structs, builtin-named fields, reserved enumerators."""
    b = BtfBuilder()
    u8 = b.int_("unsigned char", 1)
    u32 = b.int_("unsigned int", 4)
    e = b.enum("reserved_names", [(n, i) for i, n in enumerate(ENUMERATORS)])
    empty = b.enum("no_enumerators", [])
    fields = [(n, u32, 32 * i) for i, n in enumerate(C_FIELD_NAMES)]
    n = len(fields)
    fields.append(("color", e, 32 * n))
    fields.append(("nothing", empty, 32 * (n + 1)))
    cube = b.array(b.array(b.array(u8, 4), 3), 2)
    fields.append(("cube", cube, 32 * (n + 2)))
    # no bytes at all: an empty struct, 2**31 - 1 of them, a zero-length array
    empty = b.struct_("empty", 0, [])
    end = 32 * (n + 2) + 8 * 24
    fields += [("nothing", empty, end), ("many", b.array(empty, 0x7FFFFFFF), end)]
    fields.append(("flex", b.array(u8, 0), end))
    size = 4 * (n + 2) + 24
    defs: list[tuple[str | bytes, str | int, int, int, int]] = []
    structs = []
    for sname in C_STRUCT_NAMES:
        st = b.struct_(sname, size, fields)
        structs.append(st)
        defs.append((sname, "hash", st, st, 4))
    b.maps(defs)
    # globals named as the module's classes, imports, binders and Protocol's own
    # attributes: a member named ReservedNames would shadow the class for the
    # annotations after it
    gnames = [*C_FIELD_NAMES, *GLOBAL_NAMES]
    _section(b, ".bss", [(n, u32, 4) for n in gnames])
    _section(b, ".data", [(n, structs[0], size) for n in gnames[:12]] + [("last", e, 4)])
    _section(b, ".rodata", [(n, e, 4) for n in gnames])
    return b


def _misc_btf(canary: Path) -> BtfBuilder:
    """Maps with no accessor (unknown type, no wrapper) and no key type, named with payloads."""
    b = BtfBuilder()
    u32 = b.int_("unsigned int", 4)
    run = f"__import__('pathlib').Path({str(canary)!r}).touch()"
    b.maps(
        [
            (f"unknown\n{run}", 9999, u32, u32, 1),
            (f"perf\r{run}", 4, u32, u32, 1),
            (f'nokey"""{run}', "array", 0, u32, 2),
            (f"queue'\n{run}", "queue", 0, u32, 2),
            ("dup", "hash", u32, u32, 1),
            ("dup", "hash", u32, u32, 1),
        ]
    )
    _section(b, ".bss", [("counter", u32, 4)])
    _section(b, f".rodata.x\n{run}", [(f"ro\n{run}", u32, 4)])
    _section(b, f'.data."""{run}', [(f'x"""{run}', u32, 4)])
    return b


def _raw_cases(btf: Btf, rng: random.Random) -> list[MapCase]:
    cases = []
    seen: dict[str, int] = {}
    for d in btf.map_defs():
        if d.map_type != 1 or not d.key_type_id:
            continue
        stem = "open_" + (d.name if d.name.isidentifier() and d.name.isascii() else "")
        cases.append(MapCase(d.name, stem, d.key_size, d.value_size, []))
        seen[d.name] = seen.get(d.name, 0) + 1
        kmask = btf.mask(d.key_type_id)
        vmask = btf.mask(d.value_type_id)
        for _ in range(3):
            k = rng.getrandbits(8 * d.key_size) & kmask
            v = rng.getrandbits(8 * d.value_size) & vmask
            cases[-1].raw.append(
                (
                    k.to_bytes(d.key_size, "little").hex(),
                    v.to_bytes(d.value_size, "little").hex(),
                )
            )
    return cases


def _global_count(btf: Btf) -> int:
    return sum(
        btf.get(m.type_id).linkage != 0
        for t in btf.types
        if t.kind is Kind.DATASEC and is_data_section(t.name)
        for m in t.members
    )


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Module]]:
    d = tmp_path_factory.mktemp("hostile")
    canary = d / CANARY_NAME
    names = hostile_names(canary)
    rng = random.Random(9)
    blobs: list[tuple[bytes, BtfBuilder, list[str]]] = []
    for i in range(0, len(names), 15):
        batch = names[i : i + 15]
        blobs.append((f"corpus{i // 15}.btf".encode(), _corpus_btf(batch), type_args(batch)))
    blobs.append((b"c_names.btf", _c_names_btf(), ["--type", "enum reserved_names"]))
    # the object's file name is a name too: write the misc BTF under a hostile one
    evil_file = f'x"""\n{CANARY_NAME}\u2028\\N{{x}}\udcff.btf'.encode("utf-8", "surrogateescape")
    blobs.append((evil_file, _misc_btf(canary), []))
    modules = []
    for i, (fname, builder, types) in enumerate(blobs):
        src = os.path.join(os.fsencode(d), fname)
        with open(src, "wb") as f:
            f.write(builder.bytes())
        out = d / f"hostile_{i}.py"
        script = VENV_BIN / "typedmaps"
        r = subprocess.run(
            [os.fsencode(script), b"gen", src, b"-o", os.fsencode(out), *map(os.fsencode, types)],
            capture_output=True,
            timeout=120,
            check=False,
        )
        assert r.returncode == 0, r.stderr.decode(errors="replace")
        assert not canary.exists()
        btf = Btf.parse(builder.bytes())
        modules.append(Module(out, _raw_cases(btf, rng), _global_count(btf)))
    return d, modules


_IMPORTER = r"""
import json, os, sys
import dataclasses, construct, construct_typed, typedmaps, typedmaps.btf, importlib.util
for lib in (typedmaps, typedmaps.btf):  # load what the library loads lazily, before the hook
    for name in lib.__all__:
        getattr(lib, name)
events = []
ALLOWED = {"import", "exec", "compile", "object.__setattr__", "object.__getattr__",
           "sys._getframe", "builtins.id", "object.__delattr__", "code.__new__",
           "function.__new__", "marshal.loads", "os.listdir", "os.scandir",
           "sys._getframemodulename"}
def hook(event, args):
    if event == "open":
        path, mode, flags = args[0], args[1], args[2]
        writing = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
        if (mode and any(c in str(mode) for c in "wax+")) or (flags or 0) & writing:
            events.append(("open-write", str(path)))
        return
    if event == "import":
        events.append(("import", args[0]))
        return
    if event == "compile" and args[1] not in (None, "<string>"):
        if not str(args[1]).endswith(".py"):
            events.append(("compile", str(args[1])))
    if event not in ALLOWED and not event.startswith(("os.stat", "os.lstat")):
        events.append((event, repr(args)[:200]))
before = set(sys.modules)
sys.addaudithook(hook)
spec = importlib.util.spec_from_file_location(sys.argv[2], sys.argv[1])
mod = importlib.util.module_from_spec(spec)
sys.modules[sys.argv[2]] = mod
spec.loader.exec_module(mod)
new = sorted(set(sys.modules) - before)
print(json.dumps({"events": events, "new_modules": new, "all": list(mod.__all__)}))
"""


def _import_report(path: Path) -> dict[str, list[Any]]:
    r = subprocess.run(
        [sys.executable, "-c", _IMPORTER, str(path), path.stem],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    report: dict[str, list[Any]] = json.loads(r.stdout)
    return report


def test_the_import_check_sees_injected_code(tmp_path: Path) -> None:
    """The audit hook below is a real detector: it reports what a payload does."""
    evil = tmp_path / "evil_module.py"
    canary = tmp_path / CANARY_NAME
    evil.write_text(
        f"__all__ = ['x']\nx = 1\n__import__('pathlib').Path({str(canary)!r}).touch()\n"
        "import os\nos.system('true')\nimport json.tool\n"
    )
    report = _import_report(evil)
    kinds = {e[0] for e in report["events"] if isinstance(e, list)}
    assert {"open-write", "os.system", "import"} <= kinds
    assert "json.tool" in report["new_modules"]


def test_import_runs_no_code(corpus: tuple[Path, list[Module]]) -> None:
    d, modules = corpus
    canary = d / CANARY_NAME
    for m in modules:
        report = _import_report(m.path)
        assert not canary.exists(), m.path
        bad = [
            e
            for e in report["events"]
            if e[0] != "import" or not str(e[1]).startswith(("typedmaps", "construct", "encodings"))
        ]
        bad = [e for e in bad if not (e[0] == "import" and e[1] == m.path.stem)]
        assert bad == [], (m.path, bad)
        assert report["new_modules"] == [m.path.stem], report["new_modules"]
        assert report["all"], m.path


# ------------------------------------------------------------------ static proof: data only

_HELPERS = {
    "csfield",
    "csfield_default",
    "csfield_noinit",
    "DataclassStruct",
    "FrozenDataclassStruct",
    "UnionRecord",
    "UnionMember",
    "OverlayEnd",
    "BitField",
    "BoolInt",
    "CharBytes",
    "EnumInt",
    "Float32",
    "ListArray",
    "TupleArray",
    "TypedMap",
    "PerCpuTypedMap",
    "TypedQueue",
    "TypedStack",
    "TypedBloomFilter",
}
_IMPORTS = {
    "dataclasses",
    "cs",
    "construct_typed",
    "typedmaps",
    "typedmaps.btf",
    "typedmaps.typed.globals",
    "typing",
}


def _check_expr(node: ast.expr, classes: set[str], where: str) -> None:
    """Only literals, helper calls, cs.X, class names, handle, and annotations."""
    if isinstance(node, ast.Constant):
        assert isinstance(node.value, int | str | bool | type(None) | bytes), where
        return
    if isinstance(node, ast.Name):
        assert node.id in classes | _HELPERS | {"handle", "None"}, (where, node.id)
        return
    if isinstance(node, ast.Attribute):
        assert isinstance(node.value, ast.Name), where
        assert node.value.id == "cs", (where, node.value.id)
        return
    if isinstance(node, ast.Call):
        func = node.func
        if isinstance(func, ast.Name):
            assert func.id in _HELPERS, (where, func.id)
        else:
            assert isinstance(func, ast.Attribute), where
            _check_expr(func, classes, where)
        for a in node.args:
            _check_expr(a, classes, where)
        for k in node.keywords:
            assert k.arg is not None, where
            _check_expr(k.value, classes, where)
        return
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        _check_expr(node.operand, classes, where)
        return
    raise AssertionError(f"{where}: unexpected {ast.dump(node)[:120]}")


_ANNOTATION_NAMES = {"int", "bool", "float", "bytes", "list", "tuple", "None", "MapHandle"}


def _check_annotation(node: ast.expr, classes: set[str], where: str) -> None:
    allowed = classes | _ANNOTATION_NAMES | _HELPERS
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name):
            assert sub.id in allowed, (where, sub.id)
        elif not isinstance(
            sub,
            ast.Subscript | ast.Tuple | ast.BinOp | ast.BitOr | ast.Load | ast.Constant,
        ):
            raise AssertionError(f"{where}: annotation has {type(sub).__name__}")
        if isinstance(sub, ast.Constant):
            assert sub.value is Ellipsis or sub.value is None, where


def _literal_str(node: ast.expr | None, where: str) -> str:
    assert isinstance(node, ast.Constant), where
    assert isinstance(node.value, str), where
    return node.value


def _check_globals_table(node: ast.AnnAssign, classes: set[str], where: str) -> list[str]:
    """``_GLOBALS: dict[str, tuple[str, Any]] = {"attr": ("c name", schema), ...}``: its keys."""
    assert ast.unparse(node.annotation) == "dict[str, tuple[str, Any]]", where
    assert isinstance(node.value, ast.Dict), where
    keys = []
    for k, v in zip(node.value.keys, node.value.values, strict=True):
        keys.append(_literal_str(k, where))
        assert isinstance(v, ast.Tuple), where
        assert len(v.elts) == 2, where
        _literal_str(v.elts[0], where)
        _check_expr(v.elts[1], classes, where)
    return keys


def _check_binder(node: ast.FunctionDef, protocols: set[str], table: str, where: str) -> None:
    """``def globals_of(obj: BpfObject) -> X``, returning ``cast(X, bind_globals(...))``."""
    assert not node.decorator_list, where
    assert [(a.arg, ast.unparse(a.annotation or ast.Constant(None))) for a in node.args.args] == [
        ("obj", "BpfObject")
    ], where
    assert node.returns is not None, where
    assert ast.unparse(node.returns) in protocols, where
    assert len(node.body) == 2, where
    _literal_str(node.body[0].value if isinstance(node.body[0], ast.Expr) else None, where)
    ret = node.body[1]
    assert isinstance(ret, ast.Return), where
    assert ret.value is not None, where
    text = ast.unparse(ret.value)
    loaded = "True" if text.endswith("loaded=True))") else "False"
    assert text == (
        f"cast({ast.unparse(node.returns)}, bind_globals(obj, {table}, loaded={loaded}))"
    ), (where, text)


def _check_module(path: Path) -> int:
    """Every statement of a generated module is data (see the module docstring).

    Returns the number of global variables its globals classes have.
    """
    tree = ast.parse(path.read_text())
    classes = {n.name for n in tree.body if isinstance(n, ast.ClassDef)}
    protocols = {
        n.name
        for n in tree.body
        if isinstance(n, ast.ClassDef) and [ast.unparse(b) for b in n.bases] == ["Protocol"]
    }
    body = tree.body
    assert isinstance(body[0], ast.Expr)
    assert isinstance(body[0].value, ast.Constant)
    table: list[str] | None = None
    table_name = ""
    binders: list[ast.FunctionDef] = []
    members: dict[str, list[str]] = {}
    for node in body[1:]:
        where = f"{path.name}:{node.lineno}"
        if isinstance(node, ast.Import):
            assert [a.name for a in node.names] in (["dataclasses"], ["construct"]), where
        elif isinstance(node, ast.ImportFrom):
            assert node.module in _IMPORTS, where
        elif isinstance(node, ast.Assign):
            assert len(node.targets) == 1, where
            target = node.targets[0]
            assert isinstance(target, ast.Name), where
            if target.id == "__all__":
                assert isinstance(node.value, ast.List), where
                assert all(isinstance(e, ast.Constant) for e in node.value.elts), where
            else:  # a --type schema constant
                _check_expr(node.value, classes, where)
        elif isinstance(node, ast.AnnAssign):
            assert isinstance(node.target, ast.Name), where
            if node.target.id == "__all__":
                assert isinstance(node.value, ast.List), where
                assert not node.value.elts, where
            else:
                assert table is None, where
                table_name = node.target.id
                table = _check_globals_table(node, classes, where)
        elif isinstance(node, ast.ClassDef):
            if node.name in protocols:
                members[node.name] = _check_protocol(node, classes, where)
            else:
                _check_class(node, classes, where)
        elif isinstance(node, ast.FunctionDef):
            if node.args.args and node.args.args[0].arg == "obj":
                binders.append(node)
                continue
            assert node.name.startswith("open_"), where
            assert [a.arg for a in node.args.args] == ["handle"], where
            assert not node.decorator_list, where
            assert isinstance(node.body[0], ast.Expr), where
            ret = node.body[1]
            assert isinstance(ret, ast.Return), where
            assert ret.value is not None, where
            _check_expr(ret.value, classes, where)
            assert len(node.body) == 2, where
        else:
            raise AssertionError(f"{path.name}:{node.lineno}: unexpected {type(node).__name__}")
    # the globals: two Protocols with one member per table entry, and their two binders
    assert len(protocols) == len(binders) == (0 if table is None else 2), path
    for b in binders:
        _check_binder(b, protocols, table_name, f"{path.name}:{b.lineno}")
    for names in members.values():
        assert table is not None, path
        assert sorted(names) == sorted(table), path
    return len(table or ())


def _check_protocol(node: ast.ClassDef, classes: set[str], where: str) -> list[str]:
    """A globals Protocol: a docstring, annotations and ``...`` properties; its member names."""
    assert not node.decorator_list, where
    assert not node.keywords, where
    _literal_str(node.body[0].value if isinstance(node.body[0], ast.Expr) else None, where)
    names = []
    for item in node.body[1:]:
        if isinstance(item, ast.AnnAssign):
            assert isinstance(item.target, ast.Name), where
            assert item.value is None, where
            _check_annotation(item.annotation, classes, where)
            names.append(item.target.id)
            continue
        assert isinstance(item, ast.FunctionDef), where
        assert [ast.unparse(d) for d in item.decorator_list] == ["property"], where
        assert [a.arg for a in item.args.args] == ["self"], where
        assert item.returns is not None, where
        _check_annotation(item.returns, classes, where)
        assert len(item.body) == 1, where
        assert isinstance(item.body[0], ast.Expr), where
        value = item.body[0].value
        assert isinstance(value, ast.Constant), where
        assert value.value is Ellipsis, where
        names.append(item.name)
    assert len(set(names)) == len(names), where
    return names


def _check_class(node: ast.ClassDef, classes: set[str], where: str) -> None:
    bases = [b.id for b in node.bases if isinstance(b, ast.Name)]
    assert bases in (["DataclassMixin"], ["OpenIntEnum"]), where
    assert not node.keywords, where
    for deco in node.decorator_list:
        text = ast.unparse(deco)
        assert text in ("dataclasses.dataclass", "dataclasses.dataclass(frozen=True)"), where
    assert bool(node.decorator_list) == (bases == ["DataclassMixin"]), where
    doc = node.body[0]
    assert isinstance(doc, ast.Expr)
    assert isinstance(doc.value, ast.Constant)
    assert isinstance(doc.value.value, str), where
    for item in node.body[1:]:
        if isinstance(item, ast.Assign):
            assert len(item.targets) == 1, where
            assert isinstance(item.targets[0], ast.Name), where
            assert isinstance(item.value, ast.Constant), where
            if bases == ["DataclassMixin"]:
                assert item.targets[0].id == "__c_name__", where
        elif isinstance(item, ast.AnnAssign):
            assert bases == ["DataclassMixin"], where
            assert isinstance(item.target, ast.Name), where
            assert item.value is not None, where
            _check_annotation(item.annotation, classes, where)
            _check_expr(item.value, classes, where)
        else:
            raise AssertionError(f"{where}: class body has {type(item).__name__}")


def test_modules_are_only_data(corpus: tuple[Path, list[Module]]) -> None:
    _, modules = corpus
    for m in modules:
        assert _check_module(m.path) == m.globals > 0, m.path
        text = m.path.read_text()
        assert text.isascii()
        assert all(c == "\n" or " " <= c <= "~" for c in text), m.path


# ------------------------------------------------------------------ the modules work

_ROUND_TRIP = r"""
import importlib.util, json, sys
import typedmaps as tm
cases = json.loads(sys.argv[3])
spec = importlib.util.spec_from_file_location(sys.argv[2], sys.argv[1])
mod = importlib.util.module_from_spec(spec)
sys.modules[sys.argv[2]] = mod
spec.loader.exec_module(mod)
fns = sorted(n for n in mod.__all__ if n.startswith("open_"))
done = 0
for c in cases:
    fn = c["fn"] if c["fn"] != "open_" else None
    candidates = [fn] if fn in fns else fns
    ok = False
    for name in candidates:
        with tm.MapHandle.create(tm.MapType.HASH, key_size=c["key_size"],
                                 value_size=c["value_size"], max_entries=8) as h:
            try:
                m = getattr(mod, name)(h)
            except tm.SizeMismatchError:
                continue
            for kh, vh in c["raw"]:
                h.update(bytes.fromhex(kh), bytes.fromhex(vh))
            items = dict(m.items())            # keys hash
            assert len(items) == len({bytes.fromhex(k) for k, _ in c["raw"]})
            for k, v in items.items():
                assert {k: v}[k] == v and hash(k) == hash(k)
                m[k] = v                        # encode back
            back = {k.hex(): v.hex() for k, v in h.lookup_batch()}
            assert back == {k: v for k, v in c["raw"]}, (name, back, c["raw"])
            ok = True
            break
    assert ok, c["name"]
    done += 1
print(done)
"""


def test_accessors_round_trip_on_kernel_maps(corpus: tuple[Path, list[Module]]) -> None:
    need(bpf_unavailable() is None, bpf_unavailable() or "")
    _, modules = corpus
    total = 0
    for m in modules:
        if not m.maps:
            continue
        cases = [c.__dict__ for c in m.maps]
        r = subprocess.run(
            [sys.executable, "-c", _ROUND_TRIP, str(m.path), m.path.stem, json.dumps(cases)],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert r.returncode == 0, r.stderr[-3000:]
        assert int(r.stdout) == len(m.maps)
        total += len(m.maps)
    assert total >= 50


def test_modules_pass_mypy_strict_and_ruff(corpus: tuple[Path, list[Module]]) -> None:
    d, modules = corpus
    files = [m.path.name for m in modules]
    env = dict(os.environ, MYPYPATH=str(d))
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--cache-dir",
            str(d / ".mypy_cache"),
            *files,
        ],
        capture_output=True,
        text=True,
        cwd=d,
        env=env,
        timeout=600,
        check=False,
    )
    assert r.returncode == 0, r.stdout[-5000:] + r.stderr
    ruff = str(VENV_BIN / "ruff")
    rules = "E,F,W,I,B,UP,SIM,RUF,PL"
    for cmd in (
        ["check", "--isolated", "--select", rules, "--line-length", "100", *files],
        ["format", "--isolated", "--check", *files],
    ):
        r = subprocess.run([ruff, *cmd], capture_output=True, text=True, cwd=d, check=False)
        assert r.returncode == 0, r.stdout[-5000:] + r.stderr
    assert ROOT.is_dir()

"""``typedmaps gen``'s globals classes: a typed skeleton view of an object's global variables.

For an object with data sections, the generated module gets:

- ``<Obj>Globals``, a :class:`typing.Protocol` with one member per global
  variable, typed as the module's records and enums: a plain attribute for
  a variable that may be written once the object is loaded (``.data``,
  ``.bss``, ``.data.*``), a property without a setter for one that may not
  (``.rodata``, ``.rodata.*``, ``.kconfig``), so mypy rejects a write to it
  as it rejects a value of the wrong type;
- ``<Obj>OpenGlobals``, the same before load, where ``.rodata`` is the
  configuration the program starts with (writable) and only ``.kconfig``
  is read-only;
- ``globals_of(obj)`` and ``open_globals_of(obj)``, which bind a
  :class:`~typedmaps.BpfObject` (loaded, or not yet loaded) and return its
  variables as that class: a view made by
  :func:`typedmaps.typed.globals.bind_globals` with the module's schemas,
  so records come back as the generated dataclasses. Binding checks that
  every variable exists in the object with the generated size.

The variables are read from each section's DATASEC in the file's BTF; their
offsets (which clang leaves at 0 in the file) are taken from the object at
bind time, as libbpf fixes them up when the object is opened.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from ._pysafe import c_quote, comment_lines, literal
from .btf import Btf, BtfError, Kind

if TYPE_CHECKING:
    from .codegen import Generator

__all__ = ["DATA_SECTIONS", "add_globals", "is_data_section"]

#: The sections libbpf makes a map of (besides custom .data.* / .rodata.*).
DATA_SECTIONS: Final = (".data", ".bss", ".rodata", ".kconfig")


#: Names typing.Protocol keeps in a protocol class's namespace (dunders are
#: never members anyway: they get a lead letter).
_PROTOCOL_RESERVED: Final = ("_is_protocol", "_is_runtime_protocol", "_abc_impl")


def is_data_section(name: str) -> bool:
    """Whether libbpf makes a global-data map of a DATASEC with this name."""
    return name in DATA_SECTIONS or name.startswith((".data.", ".rodata."))


def _frozen(section: str) -> bool:
    return section in {".kconfig", ".rodata"} or section.startswith(".rodata.")


def _fit(line: str, width: int) -> str:
    """A generated line, told to ruff when no layout can bring it within the line length."""
    return line if len(line) <= width else line + "  # noqa: E501  # fmt: skip"


def _fit_noqa(line: str, width: int) -> str:
    """A line inside a ``fmt: off`` block, told to the line-length check when too long."""
    return line if len(line) <= width else line + "  # noqa: E501"


def add_globals(g: Generator, btf: Btf, stem: str) -> bool:
    """Emit the globals classes and binding functions for ``btf``'s data sections.

    Args:
        g: the module generator (its scope, blocks and imports).
        btf: the object's BTF.
        stem: the object's name, for the class names (``flows`` -> ``FlowsGlobals``).

    Returns:
        Whether the object has any global variable (else nothing is emitted).

    Raises:
        BtfError: a variable's type has no layout typedmaps supports.
    """
    members: list[tuple[str, str, str, str, bool]] = []  # (c name, section, ann, expr, frozen)
    for datasec in btf.types:
        if datasec.kind is not Kind.DATASEC or not is_data_section(datasec.name):
            continue
        for entry in datasec.members:
            var = btf.get(entry.type_id)
            if var.kind is not Kind.VAR or not var.ref or var.linkage == 0:
                continue  # static variables are not exposed (obj.globals neither)
            path = f"{datasec.name}.{var.name}"
            try:
                t = g.typ(var.ref, g._camel(var.name), path)
                ann, expr = t.ann, t.expr
            except BtfError:
                ann, expr = "bytes", f"cs.Bytes({btf.size_of(var.ref, path)})"
                g.uses.add("cs")
            members.append((var.name, datasec.name, ann, expr, _frozen(datasec.name)))
    if not members:
        return False
    base = g._camel(stem) if stem else "Object"
    loaded_cls = g.module.claim_class(base + "Globals", base + "Globals")
    open_cls = g.module.claim_class(base + "OpenGlobals", base + "OpenGlobals")
    spec = g.module.claim("_GLOBALS")
    bind = g.module.claim("globals_of")
    bind_open = g.module.claim("open_globals_of")
    g.exported += [loaded_cls, open_cls, bind, bind_open]
    g.uses.update({"Protocol", "cast", "BpfObject", "bind_globals"})

    from .codegen import LINE, docstring

    attrs = g.member_scope((*_PROTOCOL_RESERVED, spec)).claim_many([m[0] for m in members])
    src = c_quote(stem) if stem else "the object"
    for cls, loaded in ((loaded_cls, True), (open_cls, False)):
        when = "once loaded" if loaded else "before load (the values the program starts with)"
        ro = ".rodata, .rodata.* and .kconfig" if loaded else ".kconfig"
        doc = f"The global variables of {src} {when}; read-only ({ro}): properties."
        lines = [f"class {cls}(Protocol):", *docstring(doc, "    ")]
        section = None
        for (c_name, sec, ann, _, frozen), attr in zip(members, attrs, strict=True):
            if sec != section:
                lines += ["", *comment_lines(c_quote(sec), "    ")]
                section = sec
            if attr != c_name:
                lines += comment_lines(f"C name: {c_quote(c_name)}", "    ")
            read_only = frozen if loaded else sec == ".kconfig"
            if read_only:
                lines += ["    @property", _fit(f"    def {attr}(self) -> {ann}: ...", LINE)]
            else:
                lines.append(_fit(f"    {attr}: {ann}", LINE))
        g.blocks.append("\n".join(lines))

    # Any, not cs.Construct[Any, Any]: the module has no postponed annotations,
    # and construct's classes cannot be subscripted at run time.
    body = [f"{spec}: dict[str, tuple[str, Any]] = {{"]
    for (c_name, _, _, expr, _), attr in zip(members, attrs, strict=True):
        body.append(f"    {literal(attr)}: ({literal(c_name)}, {expr}),")
    body.append("}")
    if any(len(line) > LINE for line in body):
        # Entries too long for one line (long C names, deep types): ruff
        # format would split them, and `fmt: skip` is not for lines inside
        # an expression, so the whole table is left as written.
        body = ["# fmt: off", *[_fit_noqa(line, LINE) for line in body], "# fmt: on"]
    g.uses.update({"cs", "Any"})
    g.blocks.append("\n".join(body))
    for fname, cls, loaded in ((bind, loaded_cls, True), (bind_open, open_cls, False)):
        doc = (
            "The variables of a loaded BpfObject, typed (ObjectError before load)."
            if loaded
            else "The variables of a BpfObject not loaded yet, typed (ObjectError after)."
        )
        g.blocks.append(
            "\n".join(
                [
                    f"def {fname}(obj: BpfObject) -> {cls}:",
                    f'    """{doc}"""',
                    f"    return cast({cls}, bind_globals(obj, {spec}, loaded={loaded}))",
                ]
            )
        )
    return True

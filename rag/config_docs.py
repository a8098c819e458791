"""Write docs/configuration.md from the settings' own descriptions (:class:`rag.config.Settings`).

    python -m rag.config_docs           # (re)write docs/configuration.md
    python -m rag.config_docs --check   # exit 1 when docs/configuration.md is out of date

Everything comes from the settings class at run time: its fields (name, type, constraints,
default, ``description``), its environment prefix, and the ``# --- section ---`` comments that
group the fields in rag/config.py. A field added, removed or re-described there changes the
page the next time this runs; ``tests/unit/test_config_docs.py`` fails until it has.
"""

from __future__ import annotations

import argparse
import ast
import inspect
import re
import sys
import textwrap
import types
from collections.abc import Sequence
from enum import Enum
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined
from pydantic_settings import BaseSettings

from rag.config import REPO_ROOT, Settings

DOC_PATH = REPO_ROOT / "docs" / "configuration.md"
COMMAND = "python -m rag.config_docs"
OTHER = "Other"

# A section header in the settings class: ``# --- where state lives ----``.
_SECTION = re.compile(r"^\s*#\s*-{2,}\s*(?P<title>[^-].*?)\s*-*\s*$")
_RULE = "|---|---|---|---|"
_BOUNDS = (("ge", "≥"), ("gt", ">"), ("le", "≤"), ("lt", "<"))


def sections(settings_cls: type[BaseSettings] = Settings) -> list[tuple[str, list[str]]]:
    """The fields of ``settings_cls`` grouped by the ``# --- title ---`` comment above them in its
    source, in source order; fields the source does not show (or that come before any header) go
    to a last "Other" group. Only fields the class has at run time are listed, less those the
    environment cannot set (``exclude=True``: the tuned constants)."""
    fields = [n for n, f in settings_cls.model_fields.items() if not f.exclude]
    try:
        source = inspect.getsource(settings_cls)
    except (OSError, TypeError):
        return [(OTHER, fields)] if fields else []
    lines = source.splitlines()
    headers = [(i + 1, m["title"]) for i, line in enumerate(lines) if (m := _SECTION.match(line))]
    cls = ast.parse(textwrap.dedent(source)).body[0]
    if not isinstance(cls, ast.ClassDef):
        return [(OTHER, fields)] if fields else []
    groups: dict[str, list[str]] = {}
    seen: set[str] = set()
    for node in cls.body:
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        name = node.target.id
        if name not in fields or name in seen:
            continue
        above = [title for line, title in headers if line < node.lineno]
        title = above[-1] if above else OTHER
        groups.setdefault(title, []).append(name)
        seen.add(name)
    rest = [f for f in fields if f not in seen]
    if rest:
        groups.setdefault(OTHER, []).extend(rest)
    if OTHER in groups:  # always last
        groups[OTHER] = groups.pop(OTHER)
    return list(groups.items())


def env_name(name: str, field: FieldInfo, settings_cls: type[BaseSettings] = Settings) -> str:
    """The environment variable that sets ``name``.

    >>> env_name("top_k", Settings.model_fields["top_k"])
    'RAG_TOP_K'
    """
    alias = field.validation_alias if isinstance(field.validation_alias, str) else field.alias
    if alias:
        return alias.upper()
    prefix = str(settings_cls.model_config.get("env_prefix") or "")
    return (prefix + name).upper()


def _number(value: object) -> str:
    """A number without a needless ``.0``.

    >>> _number(60.0), _number(0.5), _number(1024)
    ('60', '0.5', '1024')
    """
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _type_name(tp: Any) -> str:
    if tp is bool:
        return "`true` / `false`"
    if get_origin(tp) is Literal:
        return " / ".join(f"`{_plain(v)}`" for v in get_args(tp))
    if isinstance(tp, type) and issubclass(tp, Enum):
        return " / ".join(f"`{m.value}`" for m in tp)
    names: dict[Any, str] = {int: "integer", float: "number", str: "text", Path: "path", SecretStr: "secret text"}
    if tp in names:
        return names[tp]
    return getattr(tp, "__name__", str(tp))


def type_text(field: FieldInfo) -> str:
    """The type or allowed values, with the field's bounds.

    >>> type_text(Settings.model_fields["top_k"])
    'integer, ≥ 1, ≤ 20'
    >>> type_text(Settings.model_fields["device"])
    '`auto` / `cpu` / `cuda` / `mps`'
    """
    tp = field.annotation
    optional = False
    if get_origin(tp) in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        optional = len(args) < len(get_args(tp))
        tp = args[0] if len(args) == 1 else tp
    text = (
        " or ".join(_type_name(a) for a in get_args(tp))
        if get_origin(tp) in (Union, types.UnionType)
        else _type_name(tp)
    )
    bounds = [f"{sign} {_number(getattr(m, key))}" for m in field.metadata for key, sign in _BOUNDS if hasattr(m, key)]
    if bounds:
        text += ", " + ", ".join(bounds)
    if optional:
        text += ", or unset"
    return text


def _plain(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, int | float):
        return _number(value)
    return str(value)


def default_text(field: FieldInfo) -> str:
    """The default as an operator would write it.

    >>> default_text(Settings.model_fields["home"]), default_text(Settings.model_fields["top_k"])
    ('`data`', '`4`')
    >>> default_text(Settings.model_fields["model_cache"])
    'unset'
    """
    if field.default_factory is not None:
        return "computed"
    value = field.default
    if value is PydanticUndefined:
        return "required"
    if value is None:
        return "unset"
    if isinstance(value, SecretStr):
        return "set (hidden)"
    text = _plain(value)
    return f"`{text}`" if text else "empty"


def _escape(text: str) -> str:
    """Markdown table cell text: one line, pipes escaped, ``<...>`` shown (not taken for HTML)
    outside code spans.

    >>> _escape("Default: <home>/models, `a|b`\\n  and c|d")
    'Default: &lt;home&gt;/models, `a\\\\|b` and c\\\\|d'
    """
    text = " ".join(text.split())
    parts = text.split("`")
    for i in range(0, len(parts), 2):  # outside code spans
        parts[i] = parts[i].replace("<", "&lt;").replace(">", "&gt;")
    return "`".join(parts).replace("|", "\\|")


def _title(text: str) -> str:
    return text[:1].upper() + text[1:]


def render(settings_cls: type[BaseSettings] = Settings) -> str:
    """The whole page, as ``python -m rag.config_docs`` writes it."""
    config = settings_cls.model_config
    prefix = str(config.get("env_prefix") or "")
    env_file = config.get("env_file")
    source = ".env" if env_file is None else str(env_file)
    case = "" if config.get("case_sensitive") else "; names are case-insensitive"
    out = [
        "# Configuration",
        "",
        f"<!-- Generated by `{COMMAND}` from rag/config.py; edit the descriptions there, then run it again. -->",
        "",
        f"Every setting is an environment variable with the prefix `{prefix}` (or a line in a `{source}` file",
        f"in the working directory){case}. Model settings take `packaged` (the",
        "offline default shipped with the app), a local folder (or, for the generator, a `.gguf` file) or a",
        "Hugging Face id (with `HF_HUB_OFFLINE=0`). The README lists the ones an operator changes most;",
        f"this page lists all of them, grouped as in `rag/config.py`, from their own descriptions (`{COMMAND}`",
        "writes it, and a unit test fails when it is out of date). Constants tuned on dev sets (fusion,",
        "feedback, reranking depth, the abstention gate, batch sizes) are not settings: they live in",
        "`rag/tuning.py`, each next to the reason for its value.",
        "",
    ]
    groups = sections(settings_cls)
    if len(groups) > 1:
        out += [" · ".join(f"[{_title(t)}](#{_anchor(t)})" for t, _ in groups), ""]
    for title, names in groups:
        out += [f"## {_title(title)}", "", "| variable | type / allowed values | default | description |", _RULE]
        for name in names:
            field = settings_cls.model_fields[name]
            row = (
                f"`{env_name(name, field, settings_cls)}`",
                _escape(type_text(field)),
                default_text(field),
                _escape(field.description or ""),
            )
            out.append("| " + " | ".join(row) + " |")
        out.append("")
    return "\n".join(out)


def _anchor(title: str) -> str:
    """GitHub's heading anchor.

    >>> _anchor("Generation backend")
    'generation-backend'
    """
    return re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog=COMMAND, description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--check", action="store_true", help="exit 1 if the page is out of date; write nothing")
    p.add_argument("--out", type=Path, default=DOC_PATH, help=f"where to write (default: {DOC_PATH})")
    args = p.parse_args(argv)
    text = render()
    current = args.out.read_text(encoding="utf-8") if args.out.exists() else None
    if args.check:
        if current != text:
            print(f"{args.out} is out of date: run `{COMMAND}`", file=sys.stderr)
            return 1
        return 0
    if current != text:
        args.out.write_text(text, encoding="utf-8")
        print(f"wrote {args.out}")
    else:
        print(f"{args.out} is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())

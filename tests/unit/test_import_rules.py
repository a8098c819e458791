"""The layering, read from the source with ast (imports inside functions and TYPE_CHECKING
blocks count too): the pages reach the index only through rag.services, and ingest/ depends on
the Protocols and plain data of rag/, never on the engines that import ingest back."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# What ingest/ may use of rag/: settings, the Protocols it is handed engines through, plain data.
INGEST_MAY_IMPORT = {"rag.config", "rag.interfaces", "rag.tuning", "rag.types"}
# The CLI entry point builds Services (it is run, never imported, so it closes no cycle).
INGEST_MAIN_MAY_IMPORT = INGEST_MAY_IMPORT | {"rag.models", "rag.services"}
WIRING = "rag/services.py"  # the one module of rag/ that imports ingest/


def imports(path: Path, package: str | None = None) -> set[str]:
    """Every module ``path`` imports, absolute (``from a import b`` yields ``a`` and ``a.b``).
    ``package``: the one relative imports start from (by default, from where ``path`` is)."""
    if package is None:
        package = ".".join(path.relative_to(ROOT).parts[:-1])
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            parts = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            base = ".".join([*parts, node.module] if node.module else parts)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def within(modules: set[str], tops: set[str]) -> set[str]:
    """The names in ``modules`` that are one of ``tops`` or inside one."""
    return {m for m in modules if any(m == t or m.startswith(f"{t}.") for t in tops)}


def sources(pattern: str) -> list[Path]:
    found = sorted(ROOT.glob(pattern))
    assert found, pattern
    return found


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


@pytest.mark.parametrize("path", sources("rag/ui/*.py"), ids=rel)
def test_pages_do_not_import_ingest(path: Path) -> None:
    assert not within(imports(path), {"ingest"}), f"{rel(path)}: go through rag.services.Services"


@pytest.mark.parametrize("path", sources("ingest/*.py"), ids=rel)
def test_ingest_imports_only_protocols_and_data_from_rag(path: Path) -> None:
    allowed = INGEST_MAIN_MAY_IMPORT if path.name == "__main__.py" else INGEST_MAY_IMPORT
    used = within(imports(path), {"rag"})
    bad = used - within(used, allowed)
    assert not bad, f"{rel(path)} imports {sorted(bad)}; take an engine through a Protocol of rag.interfaces"


def test_only_the_wiring_imports_ingest_from_rag() -> None:
    offenders = [rel(p) for p in sources("rag/**/*.py") if rel(p) != WIRING and within(imports(p), {"ingest"})]
    assert not offenders, f"only {WIRING} may import ingest/: {offenders}"


@pytest.mark.parametrize("name", sorted(INGEST_MAY_IMPORT))
def test_what_ingest_uses_of_rag_does_not_lead_back(name: str) -> None:
    """The rag/ modules ingest/ imports import no other rag/ module, so no cycle runs through them."""
    used = within(imports(ROOT / f"{name.replace('.', '/')}.py"), {"rag", "ingest"})
    bad = used - within(used, INGEST_MAY_IMPORT)
    assert not bad, f"{name} imports {sorted(bad)}"


def test_the_rule_sees_imports_inside_functions_and_relative_ones(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    from rag.store import ChromaStore\n    from . import loaders\n")
    assert imports(probe, "ingest") == {"rag.store", "rag.store.ChromaStore", "ingest", "ingest.loaders"}

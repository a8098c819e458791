"""A tiny LoRA training run on the real packaged model (a few steps, short prompts), then the
app's generator loading the adapter: the prompt it trains on is the prompt the app sends,
and the adapter changes what the model writes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rag.llm_packages import PACKAGED_LLMS
from rag.prompting import load_template
from rag.train import lora, lora_model
from rag.train.lora_data import GroundedExample, write_jsonl
from rag.train.lora_passages import paragraph_file_name
from rag.types import Chunk
from tests.conftest import MODEL_CACHE, make_settings

pytestmark = pytest.mark.slow
# The smallest packaged generator: the code path is the one that trains the shipped Qwen adapter,
# at a fraction of the CPU time.
MODEL = "smollm2-135m"

FACTS = [
    ("When was the Zorbel bridge opened?", "The Zorbel bridge was opened in 1931 by the mayor.", "1931"),
    ("Who painted the Quillan mural?", "The Quillan mural was painted by Ada Fenwick.", "Ada Fenwick"),
    ("What colour is the Marrow tram?", "The Marrow tram is painted bright green.", "bright green"),
    ("How tall is the Oskel tower?", "The Oskel tower is 212 metres tall.", "212 metres"),
]
FILLER = ["Bees make honey in hives.", "The river floods every spring.", "Chess has sixty-four squares."]


def _chunk(title: str, i: int, text: str) -> Chunk:
    return Chunk(f"{title}-{i}", f"{title}-{i}", paragraph_file_name(title, i), None, 0, len(text), text)


def _examples() -> list[GroundedExample]:
    out = []
    abstain = load_template().abstain
    for k, (question, fact, answer) in enumerate(FACTS):
        filler = [_chunk("Filler", i, t) for i, t in enumerate(FILLER[:2])]
        gold = k % 3 + 1
        sources = [*filler[: gold - 1], _chunk("Facts", k, fact), *filler[gold - 1 :]]
        out.append(GroundedExample(f"a{k}", "Facts", question, (answer,), tuple(sources), gold, f"{answer} [{gold}]."))
        silent = tuple(_chunk("Filler", i, t) for i, t in enumerate(FILLER))
        out.append(GroundedExample(f"s{k}", "Facts", question, (answer,), silent, 0, abstain))
    return out


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("lora")
    examples = _examples()
    write_jsonl(examples, root / "data" / "train.jsonl")
    write_jsonl(examples[:2], root / "data" / "dev.jsonl")
    out = root / "adapter"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RAG_MODEL_CACHE", str(MODEL_CACHE))
        mp.setenv("RAG_HOME", str(root / "home"))
        # A high learning rate so that six steps visibly move the model.
        args = [
            "--model",
            MODEL,
            "--data",
            str(root / "data"),
            "--out",
            str(out),
            "--max-steps",
            "6",
            "--batch-size",
            "2",
            "--lr",
            "1e-2",
            # a tiny run, not the shipped adapter's recipe (the defaults)
            "--rank",
            "8",
            "--alpha",
            "16",
            "--micro-batch",
            "1",
            "--max-source-chars",
            "700",
        ]
        code = lora.main([*args, "--eval-examples", "2", "--eval-max-new-tokens", "8", "--log-every", "2"])
    assert code == 0
    return out


def test_tiny_training_run_writes_a_small_adapter_with_its_card(trained: Path) -> None:
    assert (trained / "adapter_config.json").is_file()
    weights = trained / "adapter_model.safetensors"
    assert 0 < weights.stat().st_size < 10 * 1024 * 1024
    info = json.loads((trained / "training.json").read_text())
    assert info["steps"] == 6 and info["examples_seen"] == 12 and info["train_seconds"] > 0
    assert info["quick_check"]["before"]["dev_loss"] > info["quick_check"]["after"]["dev_loss"]
    assert info["model_setting"] == MODEL
    config = json.loads((trained / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == PACKAGED_LLMS[MODEL].hf_id  # not this machine's cache path
    assert not (trained / "checkpoint").exists()  # removed once the adapter is saved
    card = (trained / "README.md").read_text()
    assert f"LoRA adapter for {MODEL}" in card and "| token-F1 |" in card and "rank 8" in card


def _generator(tmp_path: Path, adapter: str) -> Any:
    from rag.generate import TransformersGenerator

    settings = make_settings(tmp_path / "home", llm_model=MODEL, lora_adapter=adapter, max_new_tokens=12)
    return TransformersGenerator(settings)


def test_adapter_loads_and_changes_the_answers(trained: Path, tmp_path: Path) -> None:
    base = _generator(tmp_path, "none")
    tuned = _generator(tmp_path, str(trained))
    assert base.adapter is None and tuned.adapter == str(trained.resolve())
    template = load_template()
    ex = _examples()[0]
    messages = ex.messages(template, 700)
    # Training renders the prompt exactly as the app's generator does.
    ids, n = lora_model.encode(tuned.tokenizer, messages, ex.target)
    assert ids[:-n] == tuned._inputs(messages)["input_ids"][0].tolist()
    assert ids[-1] == tuned.tokenizer.eos_token_id
    before = "".join(base.stream(messages))
    after = "".join(tuned.stream(messages))
    assert before != after, before
    q = "model.layers.0.self_attn.q_proj.weight"
    assert not base.model.state_dict()[q].equal(tuned.model.state_dict()[q])  # merged, not a wrapper
    assert type(tuned.model) is type(base.model)


def test_missing_packaged_adapter_falls_back_to_the_base_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import rag.models

    monkeypatch.setattr(rag.models, "ADAPTERS_DIR", tmp_path / "not-trained")
    assert _generator(tmp_path, "packaged").adapter is None

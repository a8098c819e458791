"""The LoRA training data: built from train articles only, prompts as the app renders them,
targets the app's citation check keeps, and abstentions with no answer anywhere in sight."""

from __future__ import annotations

import random
from functools import lru_cache
from pathlib import Path

import pytest

from rag.cite import verify_answer
from rag.eval.answer_metrics import contains_answer
from rag.eval.datasets import SquadArticle, SquadParagraph, SquadQuestion, datasets_dir, read_squad, split_articles
from rag.prompting import build_messages, load_template
from rag.train.lora_data import (
    GroundedExample,
    build_examples,
    build_split,
    build_unanswerable,
    leaks,
    read_jsonl,
    write_jsonl,
)
from rag.train.lora_passages import article_of, distractor_chunk, paragraph_file_name, pick_answer
from tests.fakes import HashEmbedder

SQUAD = datasets_dir() / "squad-v1.1" / "dev-v1.1-first40.json"
MAX_CHARS = 700


@lru_cache(maxsize=1)
def _split() -> tuple[list[SquadArticle], list[SquadArticle]]:
    return split_articles(read_squad(SQUAD))


@lru_cache(maxsize=1)
def _train_examples() -> tuple[GroundedExample, ...]:
    train, _ = _split()
    # A hashed bag-of-words embedder stands in for MiniLM: the split logic is what is tested.
    return tuple(build_split(train, 240, HashEmbedder(), load_template(), MAX_CHARS, 0.25, seed=3))


needs_squad = pytest.mark.skipif(not SQUAD.is_file(), reason=f"{SQUAD} is not there")


@needs_squad
def test_no_dev_article_reaches_the_training_data() -> None:
    train, dev = _split()
    examples = _train_examples()
    assert len(examples) > 200
    dev_titles = [a.title for a in dev]
    assert leaks(examples, dev_titles) == set()
    # Independently of names: no passage text comes from a dev paragraph, every passage from a train one.
    dev_texts = [p.context for a in dev for p in a.paragraphs]
    train_pids = {p.pid for a in train for p in a.paragraphs}
    for ex in examples:
        assert ex.title not in dev_titles
        for c in ex.sources:
            assert c.doc_id in train_pids
            assert not any(c.text in t for t in dev_texts), (ex.qid, c.source)


@needs_squad
def test_leak_check_catches_a_dev_passage() -> None:
    _, dev = _split()
    ex = _train_examples()[0]
    p = dev[0].paragraphs[0]
    tainted = GroundedExample(ex.qid, ex.title, ex.question, ex.answers, (*ex.sources, distractor_chunk(p, 200)),
                              ex.gold, ex.target)  # fmt: skip
    assert leaks([tainted], [a.title for a in dev]) == {dev[0].title}


@needs_squad
def test_abstention_examples_hold_no_answer_and_say_the_fixed_phrase() -> None:
    examples = _train_examples()
    abstain = load_template().abstain
    silent = [ex for ex in examples if ex.abstains]
    assert 0.15 <= len(silent) / len(examples) <= 0.35
    for ex in silent:
        assert ex.target == abstain and ex.gold == 0
        assert not any(contains_answer(c.text, ex.answers) for c in ex.sources), ex.qid
    # Some keep same-article passages (hard), some come only from other articles (not indexed).
    same = [ex for ex in silent if any(article_of(c.source) == article_of(paragraph_file_name(ex.title, 0))
                                       for c in ex.sources)]  # fmt: skip
    assert 0 < len(same) < len(silent)


@needs_squad
def test_answer_examples_cite_the_gold_passage_and_survive_the_citation_check() -> None:
    examples = [ex for ex in _train_examples() if not ex.abstains]
    positions = set()
    for ex in examples:
        assert 3 <= len(ex.sources) <= 6
        gold = ex.sources[ex.gold - 1]
        assert contains_answer(gold.text, ex.answers) and len(gold.text) <= MAX_CHARS
        assert ex.target.endswith(f"[{ex.gold}].")
        kept, dropped = verify_answer(ex.target, ex.sources, ex.question)
        assert kept == ex.target and not dropped
        positions.add(ex.gold)
    assert len(positions) >= 4  # the gold passage moves around
    short = [ex for ex in examples if ex.target == f"{pick_answer(ex.answers).rstrip(' ,;:.!?')} [{ex.gold}]."]
    assert len(short) / len(examples) > 0.8  # mostly the bare span, as the app's answer style


@needs_squad
def test_prompt_is_the_apps_prompt() -> None:
    template = load_template()
    ex = _train_examples()[0]
    messages = ex.messages(template, MAX_CHARS)
    assert messages == build_messages(ex.question, list(ex.sources), template, MAX_CHARS)
    assert template.abstain in messages[0]["content"]
    assert f"Question: {ex.question}" in messages[1]["content"]


def test_examples_round_trip_through_jsonl(tmp_path: Path) -> None:
    p = SquadParagraph("0-0", "Tower", "The tower was completed in 1889 in Paris.",
                       (SquadQuestion("q1", "When was the tower completed?", ("1889",)),))  # fmt: skip
    others = [SquadParagraph(f"1-{i}", "Other", f"Unrelated text number {i}.", ()) for i in range(5)]
    paragraphs = [p, *others]
    examples = build_examples(paragraphs, [(0, p.questions[0])], [[0, 1, 2, 3, 4, 5]], load_template(), 700, 0.0)
    assert examples and examples[0].target.startswith("1889 [")
    write_jsonl(examples, tmp_path / "x.jsonl")
    assert read_jsonl(tmp_path / "x.jsonl") == examples


def test_all_abstain_when_asked() -> None:
    p = SquadParagraph("0-0", "Tower", "The tower was completed in 1889.",
                       (SquadQuestion("q1", "When was the tower completed?", ("1889",)),))  # fmt: skip
    others = [SquadParagraph(f"1-{i}", "Other", f"Unrelated text {i}; also 1889.", ()) for i in range(3)]
    clean = [SquadParagraph(f"2-{i}", "Clean", f"Nothing here {i}.", ()) for i in range(6)]
    paragraphs = [p, *others, *clean]
    ranking = list(range(len(paragraphs)))
    examples = build_examples(paragraphs, [(0, p.questions[0])] * 20, [ranking] * 20, load_template(), 700, 1.0,
                              seed=random.Random(1).randrange(100))  # fmt: skip
    assert examples and all(ex.abstains for ex in examples)
    # The passages that mention 1889 never stand in for "no answer".
    assert all(c.doc_id.startswith("2-") for ex in examples for c in ex.sources)


def test_unanswerable_questions_become_abstentions_over_their_own_paragraph() -> None:
    # SQuAD 2.0: read_squad gives an unanswerable question no answers.
    tower = SquadParagraph("0-0", "Tower", "The tower was completed in 1889 in Paris by Gustave Eiffel.", (
        SquadQuestion("a1", "When was the tower completed?", ("1889",)),
        SquadQuestion("u1", "When was the tower demolished?", ()),
        SquadQuestion("u2", "Who designed the tower's lift?", ()),
    ))  # fmt: skip
    bridge = SquadParagraph("0-1", "Tower", "A bridge nearby was opened in 1900.",
                            (SquadQuestion("u3", "When was the bridge closed?", ()),))  # fmt: skip
    others = tuple(SquadParagraph(f"1-{i}", "Other", f"Unrelated text number {i}.", ()) for i in range(6))
    articles = [SquadArticle("Tower", (tower, bridge)), SquadArticle("Other", others)]
    template = load_template()
    examples = build_unanswerable(articles, 10, HashEmbedder(), template, 700, seed=1)
    assert sorted(ex.qid for ex in examples) == ["u1", "u2", "u3"]  # answerable questions never
    own = {"u1": "0-0", "u2": "0-0", "u3": "0-1"}
    for ex in examples:
        assert ex.abstains and ex.target == template.abstain and ex.answers == ()
        assert 3 <= len(ex.sources) <= 6 and len({c.doc_id for c in ex.sources}) == len(ex.sources)
        assert own[ex.qid] in {c.doc_id for c in ex.sources}  # the on-topic paragraph is shown
    assert len(build_unanswerable(articles, 2, HashEmbedder(), template, 700, seed=1)) == 2
    again = build_unanswerable(articles, 10, HashEmbedder(), template, 700, seed=1)
    assert again == examples  # reproducible for a seed


# --- which adapter the app loads (RAG_LORA_ADAPTER) -----------------------------------------


def test_adapter_setting_resolves_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          caplog: pytest.LogCaptureFixture) -> None:  # fmt: skip
    import rag.models
    from rag.models import ModelNotFound, describe_adapter, packaged_adapter_dir, resolve_lora_adapter

    assert resolve_lora_adapter("none") is None and resolve_lora_adapter("off") is None
    # Each packaged generator has its own adapter folder, models/lora-<name>.
    monkeypatch.setattr(rag.models, "ADAPTERS_DIR", tmp_path)
    qwen, smol = tmp_path / "lora-qwen2.5-0.5b", tmp_path / "lora-smollm2-135m"
    assert packaged_adapter_dir("packaged") == packaged_adapter_dir("qwen2.5-0.5b") == qwen
    assert packaged_adapter_dir("smollm2-135m") == smol
    # Not trained yet: the app still answers, with the base model and a warning.
    with caplog.at_level("WARNING"):
        assert resolve_lora_adapter("packaged") is None
    assert "python -m rag.train.lora --model packaged" in caplog.text
    qwen.mkdir()
    (qwen / "adapter_config.json").write_text("{}")
    assert resolve_lora_adapter("packaged") == str(qwen)
    assert resolve_lora_adapter("packaged", "qwen2.5-0.5b") == str(qwen)
    assert resolve_lora_adapter("packaged", "smollm2-135m") is None  # that generator's adapter is not there
    smol.mkdir()
    (smol / "adapter_config.json").write_text("{}")
    assert resolve_lora_adapter("packaged", "smollm2-135m") == str(smol)
    assert resolve_lora_adapter("packaged", "HuggingFaceTB/SmolLM2-360M-Instruct") is None  # other base model
    assert resolve_lora_adapter("packaged", str(tmp_path / "mine.gguf")) is None  # not a packaged name
    # An explicit folder must hold an adapter: a typo is an error, not a silent base model.
    with pytest.raises(ModelNotFound, match=r"adapter_config\.json"):
        resolve_lora_adapter(str(tmp_path / "typo"))
    assert resolve_lora_adapter(str(qwen)) == str(qwen.resolve())
    assert describe_adapter(None, "packaged").startswith("none (base model): the packaged adapter")
    assert describe_adapter(str(smol)) == "lora-smollm2-135m (packaged: models/lora-smollm2-135m)"


def test_shipped_adapters_name_their_packaged_base_model() -> None:
    import json

    from rag.llm_packages import PACKAGED_LLMS
    from rag.models import ADAPTERS_DIR, packaged_adapter_dir

    shipped = sorted(ADAPTERS_DIR.glob("lora-*/adapter_config.json"))
    assert shipped, f"no adapter under {ADAPTERS_DIR}"
    for config in shipped:
        name = config.parent.name.removeprefix("lora-")
        assert name in PACKAGED_LLMS, f"{config.parent} fits no packaged generator"
        assert packaged_adapter_dir(name) == config.parent
        # The config names the public model, not the trainer's local file.
        assert json.loads(config.read_text())["base_model_name_or_path"] == PACKAGED_LLMS[name].hf_id


def test_admin_stats_name_the_adapter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import rag.models
    from rag.services import Services
    from tests.conftest import make_settings
    from tests.fakes import EchoGenerator

    monkeypatch.setattr(rag.models, "ADAPTERS_DIR", tmp_path / "missing")
    s = Services(make_settings(tmp_path / "home"), embedder=HashEmbedder(), generator=EchoGenerator())
    assert s.stats().adapter.startswith("none (base model)")
    off = Services(
        make_settings(tmp_path / "h2", lora_adapter="none"), embedder=HashEmbedder(), generator=EchoGenerator()
    )
    assert off.stats().adapter == "none (base model)"
    bad = Services(make_settings(tmp_path / "h3", lora_adapter=str(tmp_path / "nope")), embedder=HashEmbedder(),
                   generator=EchoGenerator())  # fmt: skip
    assert bad.stats().adapter.startswith("invalid:")
    remote = Services(make_settings(tmp_path / "h4", llm_backend="openai"), embedder=HashEmbedder(),
                      generator=EchoGenerator())  # fmt: skip
    assert remote.stats().adapter == ""

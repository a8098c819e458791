"""`python -m rag.eval answers`: answer quality through the whole app pipeline, base model
vs LoRA adapter in one run.

    python -m rag.eval answers --squad ../shared/datasets/squad-v1.1/dev-v1.1-first40.json \\
        [--limit 120] [--held-back-limit 40] [--no-adapter | --no-base] [--json]

The SQuAD articles (by default the dev side of :func:`rag.eval.datasets.split_articles`, never
seen by the adapter; ``--articles all`` for a file of your own) are split once more
(:mod:`rag.eval.answer_plan`): ``--held-back`` of them are NOT indexed. Every other paragraph is written as
``<Article>__<n>.txt`` and ingested into a fresh temporary index by the app's own Indexer.
Each question then goes through :class:`rag.pipeline.RagPipeline` exactly as in the app
(retrieve, rerank when a reranker is configured, prompt, generate, citation check) with the
generator loaded without, then with, the adapter (same index, same questions).

Reported per variant (see :func:`rag.eval.answer_scoring.summarise`):

- indexed articles' questions: token-F1 and exact match of the final answer against the gold
  answers (SQuAD normalisation, markers removed; an abstention scores 0), answered share;
  citation precision = share of the cited passages whose text holds a gold answer; citation
  rate = share of the model's own (raw) non-abstaining answers that carry a ``[n]`` marker;
- held-back articles' questions (nothing relevant is indexed): correct abstention = share
  answered with the abstention phrase; hallucination = share answered anyway (the final
  answer, after the app's checks) and the raw share the model itself answered; and the share
  the app refused before asking the model (no chunk passed Tuning.min_relevance);
- latency: time to the first token and decoding speed in tokens/s.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rag.config import Settings
from rag.eval.answer_plan import DEFAULT_SQUAD, plan, write_articles
from rag.eval.answer_scoring import Record, score, summarise, target_checks
from rag.eval.datasets import read_squad, split_articles


class SwitchGenerator:
    """Lets one Services (one index, one pipeline) answer with each variant's generator in turn."""

    def __init__(self) -> None:
        self.current: Any = None
        self.name = "none"

    def use(self, generator: Any) -> None:
        self.current, self.name = generator, generator.name

    def stream(self, messages: list[dict[str, str]]) -> Iterator[str]:
        yield from self.current.stream(messages)


def variants(args: argparse.Namespace, settings: Settings) -> list[tuple[str, str]]:
    """-> [(label, RAG_LORA_ADAPTER value)] in the order they run."""
    from rag.models import resolve_lora_adapter

    out: list[tuple[str, str]] = []
    if not args.no_base:
        out.append(("base", "none"))
    if not args.no_adapter:
        adapter = args.adapter or (settings.lora_adapter if settings.lora_adapter.lower() != "none" else "packaged")
        if resolve_lora_adapter(adapter, settings.llm_model) is None:
            raise SystemExit(
                f"No LoRA adapter to evaluate ({adapter!r} resolves to none): train it with "
                "`python -m rag.train.lora`, pass --adapter DIR, or run with --no-adapter."
            )
        out.append(("adapter", adapter))
    if not out:
        raise SystemExit("--no-base and --no-adapter together leave nothing to evaluate.")
    return out


def evaluate(args: argparse.Namespace, settings: Settings, quiet: bool) -> dict[str, Any]:
    from rag.embed import SentenceTransformerEmbedder
    from rag.generate import TransformersGenerator
    from rag.models import ModelNotFound
    from rag.services import Services

    def say(msg: str) -> None:
        if not quiet:
            print(msg, flush=True)

    articles = read_squad(args.squad)
    if args.articles == "dev":
        articles = split_articles(articles)[1]
    todo = variants(args, settings)
    p = plan(articles, args.held_back, args.limit, args.held_back_limit, args.seed)
    folder = settings.home_dir / "squad"
    files = write_articles(p.indexed, folder)
    switch = SwitchGenerator()
    embedder = SentenceTransformerEmbedder(settings)
    try:
        services = Services(settings, embedder=embedder, generator=switch)
    except ModelNotFound as e:  # "rerank when available": the shipped reranker may not be trained yet
        if settings.reranker_model == "none":
            raise
        say(f"no reranker ({e}); evaluating without one")
        settings = settings.model_copy(update={"reranker_model": "none"})
        services = Services(settings, embedder=embedder, generator=switch)
    t0 = time.perf_counter()
    results = services.indexer.ingest_paths([folder])
    failed = [r for r in results if r.status == "failed"]
    ingest_s = time.perf_counter() - t0
    chunks = services.registry.stats()["chunks"]
    for r in failed[:5]:
        say(f"  not indexed: {r.source}: {r.reason}")
    say(f"indexed {files - len(failed)} paragraphs of {len(p.indexed)} articles ({chunks} chunks) in {ingest_s:.0f} s; "
        f"held back: {', '.join(a.title for a in p.held_back)}")  # fmt: skip
    abstain = services.pipeline.template.abstain
    records: list[Record] = []
    seconds: dict[str, float] = {}
    for label, adapter in todo:
        generator = TransformersGenerator(settings.model_copy(update={"lora_adapter": adapter}))
        switch.use(generator)
        say(f"{label}: generator {generator.name}, adapter {generator.adapter or 'none'}")
        t1 = time.perf_counter()
        for i, q in enumerate(p.questions, 1):
            stream = services.pipeline.stream(q.question)
            raw = "".join(stream).strip()
            assert stream.answer is not None
            tokens = len(generator.tokenizer(raw, add_special_tokens=False)["input_ids"]) if raw else 0
            records.append(score(label, q, raw, stream.answer, abstain, tokens))
            if i % 25 == 0 or i == len(p.questions):
                say(f"  {label}: {i}/{len(p.questions)} questions, {time.perf_counter() - t1:.0f} s")
        seconds[label] = round(time.perf_counter() - t1, 1)
        del generator
    s = settings
    return {
        "dataset": str(args.squad),
        "articles": args.articles,
        "indexed_articles": [a.title for a in p.indexed],
        "held_back_articles": [a.title for a in p.held_back],
        "chunks": chunks,
        "ingest_seconds": round(ingest_s, 1),
        "settings": {
            "top_k": s.top_k,
            "max_source_chars": s.tuning.max_source_chars,
            "max_new_tokens": s.max_new_tokens,
            "retrieval_mode": s.retrieval_mode,
            "reranker_model": s.reranker_model,
            "bf16": s.bf16,
            "llm_int8_decode": s.tuning.llm_int8_decode,
            "abstain_min_prob": s.tuning.abstain_min_prob,
        },
        "variants": {
            label: {
                "adapter": adapter,
                "seconds": seconds[label],
                **summarise([r for r in records if r.variant == label]),
            }
            for label, adapter in todo
        },
        "records": [asdict(r) for r in records],
    }


ROWS = [
    ("token-F1 (indexed)", "f1", "{:.3f}"),
    ("exact match (indexed)", "em", "{:.3f}"),
    ("answer contains the gold answer (indexed)", "contains_answer", "{:.3f}"),
    ("answerable questions refused (indexed)", "refused", "{:.3f}"),
    ("evidence among the sources (indexed)", "evidence_shown", "{:.3f}"),
    ("refused although the evidence was shown", "refused_with_evidence", "{:.3f}"),
    ("citation precision", "citation_precision", "{:.3f}"),
    ("answers shown that are right (all questions)", "shown_right", "{:.3f}"),
    ("citation rate (raw answers)", "citation_rate", "{:.3f}"),
    ("correct abstention (held back)", "correct_abstention", "{:.3f}"),
    ("hallucination (held back)", "hallucination", "{:.3f}"),
    ("hallucination, raw model (held back)", "hallucination_raw", "{:.3f}"),
    ("abstained before the model (held back)", "held_back_not_asked", "{:.3f}"),
    ("time to first token p50, ms", "ttft_ms_p50", "{:.0f}"),
    ("decode tokens/s p50", "tokens_per_s_p50", "{:.1f}"),
    ("new tokens per answer, mean", "new_tokens_mean", "{:.1f}"),
    ("wall time, s", "seconds", "{:.0f}"),
]


def format_table(result: dict[str, Any]) -> str:
    vs = result["variants"]
    head = f"{'metric':<44}" + "".join(f"{v:>12}" for v in vs)
    lines = [head, "-" * len(head)]
    for label, key, fmt in ROWS:
        cells = ["n/a" if vs[v].get(key) is None else fmt.format(vs[v][key]) for v in vs]
        lines.append(f"{label:<44}" + "".join(f"{c:>12}" for c in cells))
    checks = target_checks(vs)
    if checks:
        lines.append("")
        lines += [f"target {desc}: {'met' if ok else 'NOT met' if ok is not None else 'n/a'}" for desc, ok in checks]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    base = Settings()
    home = Path(args.home) if args.home else Path(tempfile.mkdtemp(prefix="grounded-answers-"))
    # A fresh index, but the converted generator is reused from the usual model cache.
    settings = base.model_copy(update={"home": home, "model_cache": base.model_cache_dir})
    try:
        result = evaluate(args, settings, quiet=args.json)
    finally:
        if not args.home:
            shutil.rmtree(home, ignore_errors=True)
    records = result.pop("records")
    if args.records:
        with open(args.records, "w", encoding="utf-8") as fh:
            for r in records:
                fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    if args.json:
        result["targets"] = {desc: ok for desc, ok in target_checks(result["variants"])}
        print(json.dumps(result, indent=2))
    else:
        n = result["variants"][next(iter(result["variants"]))]
        print(f"\n{Path(result['dataset']).name} ({result['articles']} articles): {n['questions_indexed']} questions "
              f"on {len(result['indexed_articles'])} indexed articles ({result['chunks']} chunks), "
              f"{n['questions_held_back']} on held-back {', '.join(result['held_back_articles'])}")  # fmt: skip
        print(format_table(result))
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("answers", help="answer F1/EM, citations, abstention and latency: base vs LoRA adapter")
    p.add_argument("--squad", type=Path, default=DEFAULT_SQUAD, help="SQuAD v1.1 JSON file")
    p.add_argument(
        "--articles",
        choices=["dev", "all"],
        default="dev",
        help="'dev': the dev side of the article split (unseen in training); 'all': every article",
    )
    p.add_argument("--held-back", type=int, default=2, help="articles NOT indexed (their questions need abstention)")
    p.add_argument("--limit", type=int, default=120, help="questions from indexed articles (0 = all)")
    p.add_argument("--held-back-limit", type=int, default=40, help="questions from held-back articles (0 = all)")
    p.add_argument("--no-adapter", action="store_true", help="evaluate the base model only")
    p.add_argument("--no-base", action="store_true", help="evaluate the adapter only")
    p.add_argument("--adapter", default="", help="adapter folder (default: RAG_LORA_ADAPTER, or the packaged one)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    p.add_argument("--records", default="", help="also write every answer as JSON lines to this file")
    p.add_argument("--home", default="", help="keep the index here instead of a temporary folder")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run)

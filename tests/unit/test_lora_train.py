"""LoRA training (rag.train.lora_args, rag.train.lora_model) without a real model: the command
line's defaults per base model, the padded batch loss against the one-example loss, and
checkpoints that resume where a run stopped (on a tiny randomly initialised Qwen2 with a LoRA
adapter, a few milliseconds a step)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest

from rag.config import REPO_ROOT
from rag.train import lora_args, lora_model
from rag.tuning import Tuning


def test_out_defaults_to_the_packaged_generators_adapter_folder() -> None:
    args = lora_args.parse_args([])
    assert args.model == "qwen2.5-0.5b"
    assert Path(args.out) == REPO_ROOT / "models" / "lora-qwen2.5-0.5b"
    assert Path(lora_args.parse_args(["--model", "packaged"]).out) == REPO_ROOT / "models" / "lora-qwen2.5-0.5b"
    assert Path(lora_args.parse_args(["--model", "smollm2-135m"]).out) == REPO_ROOT / "models" / "lora-smollm2-135m"
    assert lora_args.parse_args(["--model", "/x/y.gguf", "--out", "/tmp/a"]).out == "/tmp/a"
    assert args.resume and args.save_every == 10
    assert not lora_args.parse_args(["--no-resume"]).resume


def test_the_defaults_are_the_shipped_adapters_recorded_settings() -> None:
    """`make train-lora` (no flags but --build-only/--data-out, then --data) reproduces
    models/lora-qwen2.5-0.5b: every setting its training.json records is the command line's
    default, and so is every flag of the two commands it records."""
    import json
    import re
    import shlex

    record = json.loads((REPO_ROOT / "models" / "lora-qwen2.5-0.5b" / "training.json").read_text())
    args = lora_args.parse_args([])
    assert args.model == record["model_setting"] and Path(args.out).name == "lora-qwen2.5-0.5b"
    lora_cfg = record["lora"]
    assert (args.rank, args.alpha, args.dropout) == (lora_cfg["rank"], lora_cfg["alpha"], lora_cfg["dropout"])
    assert args.target_modules.split(",") == lora_cfg["target_modules"]
    assert (args.epochs, args.batch_size, args.micro_batch) == (record["epochs"], record["batch_size"],
                                                                record["micro_batch"])  # fmt: skip
    assert (args.lr, args.seed, args.max_steps) == (record["learning_rate"], record["seed"], 0)
    assert round(record["steps"] * args.warmup) == record["warmup_steps"]
    assert (args.max_source_chars, args.unanswerable) == (record["max_source_chars"], record["unanswerable_examples"])
    assert args.examples + args.unanswerable == record["train_examples"]
    assert record["dev_examples"] <= args.eval_examples
    assert f"at most {args.eval_max_new_tokens} new tokens" in record["quick_check"]["what"]
    # The device is the machine's: "auto" takes the GPU the record names when there is one.
    assert args.device == "auto" and record["device"].startswith("cuda")
    # The two recorded commands (build the examples, then train) set nothing the defaults don't.
    commands = re.findall(r"`(?:python -m rag\.train\.lora )?([^`]*)`", record["prebuilt_data"])
    assert len(commands) == 2
    own = {"data_out", "data", "build_only", "device"}  # where the data goes and the machine
    for command in commands:
        given = vars(lora_args.parse_args(shlex.split(command.replace("DIR", "/tmp/x"))))
        changed = {k: v for k, v in given.items() if v != getattr(args, k) and k not in own}
        assert changed == {}, command


def test_a_base_model_that_is_not_packaged_needs_out(capsys: pytest.CaptureFixture[str]) -> None:
    for model in ("/x/y.gguf", "Qwen/Qwen2.5-0.5B-Instruct"):
        with pytest.raises(SystemExit) as exit_:
            lora_args.parse_args(["--model", model])
        assert exit_.value.code == 2
        assert "--out is required" in capsys.readouterr().err


# --- on a tiny model --------------------------------------------------------------------------


def tiny_lora_model(seed: int = 0) -> Any:
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(seed)
    config = Qwen2Config(
        vocab_size=100,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=64,
    )
    model = Qwen2ForCausalLM(config)
    model.config.use_cache = False
    adapter = argparse.Namespace(rank=4, alpha=8.0, dropout=0.0, target_modules=" q_proj, v_proj,down_proj ,")
    return lora_model.add_lora(model, adapter)


def adapter_weights(model: Any) -> dict[str, Any]:
    from peft import get_peft_model_state_dict

    return {k: v.detach().clone() for k, v in get_peft_model_state_dict(model).items()}


BATCH = [([3, 5, 7, 9, 11, 13], 2), ([4, 6, 8], 1), ([1, 2, 3, 4, 5], 3)]


def test_padded_batch_loss_equals_the_one_example_losses() -> None:
    import torch

    model = tiny_lora_model()
    model.eval()
    with torch.no_grad():
        single = sum(lora_model.answer_loss(model, ids, n, torch).item() for ids, n in BATCH)
        batched = lora_model.batch_loss(model, BATCH, 0, torch).item()
    assert batched == pytest.approx(single, rel=1e-5)


def test_only_the_adapter_trains_in_fp32() -> None:
    import torch

    model = tiny_lora_model()
    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    assert all(p.dtype == torch.float32 for p in trainable.values())
    # Every named target module got an adapter, nothing else did.
    wrapped = {n.split(".lora_")[0].rsplit(".", 1)[-1] for n in trainable}
    assert wrapped == {"q_proj", "v_proj", "down_proj"}


def train_step(model: Any, optimizer: Any) -> float:
    import torch

    loss = lora_model.batch_loss(model, BATCH, 0, torch)
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return float(loss.item())


def test_checkpoint_round_trip_resumes_adapter_optimizer_and_step(tmp_path: Path) -> None:
    import torch

    model = tiny_lora_model()
    before = adapter_weights(model)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    losses = [train_step(model, optimizer)]
    trained = adapter_weights(model)
    assert any(not torch.equal(before[k], trained[k]) for k in trained)  # the step moved the adapter

    checkpoint = tmp_path / "out" / "checkpoint"
    lora_model.save_checkpoint(checkpoint, model, optimizer, 1, losses, torch)
    assert sorted(p.name for p in checkpoint.iterdir()) == ["state.pt"]  # the temporary file was renamed

    fresh = tiny_lora_model()
    fresh_optimizer = torch.optim.AdamW([p for p in fresh.parameters() if p.requires_grad], lr=1e-2)
    assert lora_model.load_checkpoint(tmp_path / "nothing-here", fresh, fresh_optimizer, torch) == (0, [])
    step, resumed_losses = lora_model.load_checkpoint(checkpoint, fresh, fresh_optimizer, torch)
    assert (step, resumed_losses) == (1, losses)
    loaded = adapter_weights(fresh)
    assert loaded.keys() == trained.keys()
    assert all(torch.equal(loaded[k], trained[k]) for k in trained)
    # The optimizer's moments came back too: the next step is the one the first run would take.
    saved_state, loaded_state = optimizer.state_dict()["state"], fresh_optimizer.state_dict()["state"]
    assert saved_state.keys() == loaded_state.keys()
    for i in saved_state:
        assert torch.equal(saved_state[i]["exp_avg"], loaded_state[i]["exp_avg"])
        assert torch.equal(saved_state[i]["exp_avg_sq"], loaded_state[i]["exp_avg_sq"])
    train_step(model, optimizer)
    train_step(fresh, fresh_optimizer)
    after, fresh_after = adapter_weights(model), adapter_weights(fresh)
    assert all(torch.allclose(after[k], fresh_after[k]) for k in after)

    # A later checkpoint replaces the earlier one.
    lora_model.save_checkpoint(checkpoint, model, optimizer, 2, [*losses, 0.5], torch)
    third = tiny_lora_model()
    third_optimizer = torch.optim.AdamW([p for p in third.parameters() if p.requires_grad], lr=1e-2)
    assert lora_model.load_checkpoint(checkpoint, third, third_optimizer, torch) == (2, [*losses, 0.5])


def tiny_chat_tokenizer() -> Any:
    """A word-level tokenizer of the tiny model's 100 ids with a one-line chat template."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = ["<eos>", "<unk>", "system", "user", "assistant", "a", "b", *(f"w{i}" for i in range(93))]
    backend = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<eos>", unk_token="<unk>")
    tokenizer.chat_template = (
        "{% for m in messages %}{{ m['role'] }} {{ m['content'] }} {% endfor %}"
        "{% if add_generation_prompt %}assistant {% endif %}"
    )
    return tokenizer


def test_the_quick_check_decodes_with_the_apps_generator() -> None:
    """The adapter's before/after figures come from the app's decoder (rag.generate over
    rag.decode), run on the model being trained: the same tokens as greedy ``generate()`` with
    the app's repetition penalty (the abstention gate off here: no phrase in this vocabulary)."""
    import torch

    from rag.config import Settings
    from rag.generate import TransformersGenerator

    model, tokenizer = tiny_lora_model(seed=3), tiny_chat_tokenizer()
    model.eval()
    settings = Settings(_env_file=None, tuning=Tuning(abstain_min_prob=0.0, repetition_penalty=1.1), max_new_tokens=10)  # type: ignore[call-arg]
    messages = [{"role": "system", "content": "w1 w2 w3"}, {"role": "user", "content": "w4 w5 w6 w7"}]
    generator = TransformersGenerator.around(model, tokenizer, settings)
    text = "".join(generator.stream(messages))
    enc = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.inference_mode():
        out = model.generate(**enc, max_new_tokens=10, do_sample=False, repetition_penalty=1.1, pad_token_id=0)
    expected = tokenizer.decode(out[0, enc["input_ids"].shape[1] :], skip_special_tokens=True)
    assert generator.last_stats.new_tokens > 0 and text.split() == expected.split()
    assert generator.last_stats.reused_tokens > 0  # the system prompt's keys and values were reused

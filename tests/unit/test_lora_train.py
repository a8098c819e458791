"""rag.train.lora without a real model: the command line's defaults per base model, the padded
batch loss against the one-example loss, and checkpoints that resume where a run stopped (on a
tiny randomly initialised Qwen2 with a LoRA adapter, a few milliseconds a step)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest

from rag.config import REPO_ROOT
from rag.train import lora


def test_out_defaults_to_the_packaged_generators_adapter_folder() -> None:
    args = lora.parse_args([])
    assert args.model == "qwen2.5-0.5b"
    assert Path(args.out) == REPO_ROOT / "models" / "lora-qwen2.5-0.5b"
    assert Path(lora.parse_args(["--model", "packaged"]).out) == REPO_ROOT / "models" / "lora-qwen2.5-0.5b"
    assert Path(lora.parse_args(["--model", "smollm2-135m"]).out) == REPO_ROOT / "models" / "lora-smollm2-135m"
    assert lora.parse_args(["--model", "/x/y.gguf", "--out", "/tmp/a"]).out == "/tmp/a"
    assert args.resume and args.save_every == 10 and args.micro_batch == 0 and args.unanswerable == 0
    assert not lora.parse_args(["--no-resume"]).resume


def test_a_base_model_that_is_not_packaged_needs_out(capsys: pytest.CaptureFixture[str]) -> None:
    for model in ("/x/y.gguf", "Qwen/Qwen2.5-0.5B-Instruct"):
        with pytest.raises(SystemExit) as exit_:
            lora.parse_args(["--model", model])
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
    lora_args = argparse.Namespace(rank=4, alpha=8.0, dropout=0.0, target_modules=" q_proj, v_proj,down_proj ,")
    return lora.add_lora(model, lora_args)


def adapter_weights(model: Any) -> dict[str, Any]:
    from peft import get_peft_model_state_dict

    return {k: v.detach().clone() for k, v in get_peft_model_state_dict(model).items()}


BATCH = [([3, 5, 7, 9, 11, 13], 2), ([4, 6, 8], 1), ([1, 2, 3, 4, 5], 3)]


def test_padded_batch_loss_equals_the_one_example_losses() -> None:
    import torch

    model = tiny_lora_model()
    model.eval()
    with torch.no_grad():
        single = sum(lora.answer_loss(model, ids, n, torch).item() for ids, n in BATCH)
        batched = lora.batch_loss(model, BATCH, 0, torch).item()
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

    loss = lora.batch_loss(model, BATCH, 0, torch)
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
    lora.save_checkpoint(checkpoint, model, optimizer, 1, losses, torch)
    assert sorted(p.name for p in checkpoint.iterdir()) == ["state.pt"]  # the temporary file was renamed

    fresh = tiny_lora_model()
    fresh_optimizer = torch.optim.AdamW([p for p in fresh.parameters() if p.requires_grad], lr=1e-2)
    assert lora.load_checkpoint(tmp_path / "nothing-here", fresh, fresh_optimizer, torch) == (0, [])
    step, resumed_losses = lora.load_checkpoint(checkpoint, fresh, fresh_optimizer, torch)
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
    lora.save_checkpoint(checkpoint, model, optimizer, 2, [*losses, 0.5], torch)
    third = tiny_lora_model()
    third_optimizer = torch.optim.AdamW([p for p in third.parameters() if p.requires_grad], lr=1e-2)
    assert lora.load_checkpoint(checkpoint, third, third_optimizer, torch) == (2, [*losses, 0.5])

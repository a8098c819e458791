"""Which tokens end an answer (rag.llm_load.stop_ids): the generation config's eos, the
tokenizer's, and every end-of-text token of the chat templates we ship that the vocabulary
holds as a special token (Qwen2.5 ends its turn with <|im_end|> whichever eos its GGUF names)."""

from __future__ import annotations

from dataclasses import dataclass, field

from rag.llm_load import END_TOKENS, stop_ids


@dataclass
class FakeTokenizer:
    eos_token_id: int | None
    all_special_tokens: list[str] = field(default_factory=list)
    vocab: dict[str, int] = field(default_factory=dict)

    def convert_tokens_to_ids(self, token: str) -> int:
        return self.vocab[token]


QWEN_VOCAB = {"<|endoftext|>": 151643, "<|im_start|>": 151644, "<|im_end|>": 151645, "hello": 7}


def test_generation_config_and_tokenizer_eos() -> None:
    tok = FakeTokenizer(eos_token_id=2)
    assert stop_ids(tok, None) == {2}
    assert stop_ids(tok, 5) == {2, 5}
    assert stop_ids(tok, [5, 6, 2]) == {2, 5, 6}
    assert stop_ids(FakeTokenizer(eos_token_id=None), None) == set()
    assert stop_ids(FakeTokenizer(eos_token_id=None), [3]) == {3}


def test_every_special_end_token_stops() -> None:
    # A Qwen2.5 GGUF whose tokenizer names <|endoftext|> as eos still stops at <|im_end|>.
    tok = FakeTokenizer(151643, ["<|endoftext|>", "<|im_start|>", "<|im_end|>"], QWEN_VOCAB)
    assert stop_ids(tok, None) == {151643, 151645}
    assert stop_ids(tok, 151645) == {151643, 151645}
    assert 151644 not in stop_ids(tok, None)  # a start token is not an end


def test_tokens_added_later_count_and_ordinary_words_do_not() -> None:
    tok = FakeTokenizer(2, ["</s>"], {"<|eot_id|>": 9, "<|im_end|>": 11, "</s>": 2})
    tok.added_tokens_encoder = {"<|eot_id|>": 9}  # type: ignore[attr-defined]
    # <|im_end|> is in the vocabulary but not special (it is plain text for this model): no stop.
    assert stop_ids(tok, None) == {2, 9}


def test_a_tokenizer_without_special_token_lists() -> None:
    class Bare:
        eos_token_id = 4

        def convert_tokens_to_ids(self, token: str) -> int:
            raise AssertionError("not asked for a token it does not list")

    assert stop_ids(Bare(), [1]) == {1, 4}


def test_end_tokens_cover_the_shipped_chat_templates() -> None:
    assert {"<|im_end|>", "<|endoftext|>"} <= set(END_TOKENS)  # Qwen2.5 (ChatML); SmolLM2 uses <|im_end|> too

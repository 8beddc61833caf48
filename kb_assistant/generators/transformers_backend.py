"""transformers backend: a local checkpoint directory (GLM-4, ChatGLM-6B/2/3 with their own code, others)."""

from __future__ import annotations

import json
import threading
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import ModelUnavailableError
from ..profiles import profile_window
from .base import ChatMessage, Generator

# Config fields that hold the trained window, by the names different model families use.
_WINDOW_FIELDS = ("seq_length", "max_sequence_length", "max_position_embeddings", "n_positions", "n_ctx")


def pick_device(device: str = "auto") -> str:
    """'cuda' when asked for or available under 'auto', else 'cpu'."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ModelUnavailableError("device 'cuda' was asked for but torch sees no GPU here: use device 'cpu'")
    return device


def config_window(config: Any) -> int | None:
    """The trained context window a model config records, if any."""
    for field in _WINDOW_FIELDS:
        value = getattr(config, field, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def chatglm_prompt(messages: Sequence[ChatMessage], *, first_round: int = 1, blank_lines: bool = True) -> str:
    """ChatGLM-6B/2's own format: ``[Round n]\\n\\n问：...\\n\\n答：...`` (tokenizers without a chat template).

    ChatGLM-6B numbers rounds from 0 with single newlines, ChatGLM2 from 1 with blank lines. There is no
    system role, so a system message is put in front of the first question.
    """
    system = "\n".join(m.content for m in messages if m.role == "system")
    turns: list[tuple[str, str | None]] = []
    for m in messages:
        if m.role == "user":
            turns.append((m.content, None))
        elif m.role == "assistant" and turns and turns[-1][1] is None:
            turns[-1] = (turns[-1][0], m.content)
    if not turns or turns[-1][1] is not None:
        turns.append(("", None))
    if system:
        turns[0] = (f"{system}\n\n{turns[0][0]}", turns[0][1])
    sep = "\n\n" if blank_lines else "\n"
    out = []
    for i, (question, answer) in enumerate(turns, first_round):
        out.append(f"[Round {i}]{sep}问：{question}{sep}答：{answer if answer is not None else ''}")
    return sep.join(out)


class _StopOnEvent:
    """A transformers StoppingCriteria that ends generation when an event is set."""

    def __init__(self, *events: threading.Event | None) -> None:
        self.events = [e for e in events if e is not None]

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> bool:
        return any(e.is_set() for e in self.events)


class TransformersGenerator(Generator):
    """Streams from a local transformers checkpoint, optionally quantized and with a fine-tuned adapter."""

    def __init__(
        self,
        path: str | Path,
        *,
        quantize: str = "none",
        adapter: str | Path | None = None,
        merge_adapter: bool = False,
        context_window: int | None = None,
        device: str = "auto",
    ) -> None:
        path = Path(path).expanduser()
        if not (path / "config.json").is_file():
            raise ModelUnavailableError(
                f"no transformers checkpoint at {path}: give a local directory holding config.json, the "
                "weights and the tokenizer (e.g. a downloaded chatglm3-6b or glm-4-9b-chat folder)"
            )
        try:
            import torch  # noqa: F401
            import transformers
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise ModelUnavailableError("pip install torch transformers to run transformers checkpoints") from exc
        from .adapters import attach_adapter, is_lora
        from .quantize import convert_after_load, load_kwargs

        self.device = pick_device(device)
        self.quantize = quantize
        # ChatGLM-6B/2/3 ship their modeling code in the checkpoint; it is only ever read from this
        # local directory (local_files_only), never fetched.
        common = {"trust_remote_code": True, "local_files_only": True}
        try:
            self.config = transformers.AutoConfig.from_pretrained(path, **common)
            self.tokenizer = transformers.AutoTokenizer.from_pretrained(path, **common)
        except (OSError, ValueError) as exc:
            raise ModelUnavailableError(f"transformers could not read {path}: {exc}") from exc
        kwargs = {**common, **load_kwargs(quantize, self.device)}
        try:
            model = self._auto_class(transformers).from_pretrained(path, **kwargs)
        except (OSError, ValueError, RuntimeError, ImportError) as exc:
            raise ModelUnavailableError(f"transformers could not load the model in {path}: {exc}") from exc
        if "device_map" not in kwargs:
            model = model.to(self.device)
        if adapter is not None:
            # torch's dynamic int8 swaps every Linear, LoRA's own A/B layers too, which PEFT then cannot call:
            # merge first (exact for LoRA, see test_lora_merged_matches_unmerged).
            cpu_int8 = quantize == "int8" and self.device == "cpu"
            model = attach_adapter(model, adapter, merge=merge_adapter or (cpu_int8 and is_lora(Path(adapter))))
        model = convert_after_load(model, quantize, self.device)
        model.eval()
        self._model = model  # reached only under the guard: _stream_prompt, or exclusive_model()
        self.path = path
        self.name = path.name + (f"+{Path(adapter).name}" if adapter else "")
        self.trained_window = config_window(self.config) or profile_window(path.name) or 2048
        self.context_window = context_window or self.trained_window
        params = sum(p.numel() for p in model.parameters())
        self.follows_citation_instructions = params >= 3_000_000_000 or profile_window(path.name) is not None
        self._template = getattr(self.tokenizer, "chat_template", None)
        # Templates that write the special prefix themselves (GLM-4's "[gMASK]<sop>") must not get it twice;
        # ChatGLM-6B/2's fallback prompt relies on the tokenizer adding it.
        self._add_special_tokens = not self._template
        self._eos = self._eos_ids()

    def _auto_class(self, transformers: Any) -> Any:
        auto_map = getattr(self.config, "auto_map", None) or {}
        if type(self.config) in transformers.AutoModelForCausalLM._model_mapping or "AutoModelForCausalLM" in auto_map:
            return transformers.AutoModelForCausalLM
        if "AutoModel" in auto_map:  # ChatGLM-6B maps only AutoModel to its ChatGLMForConditionalGeneration
            return transformers.AutoModel
        return transformers.AutoModelForCausalLM

    def _eos_ids(self) -> list[int]:
        ids: list[int] = []
        gen = getattr(self._model, "generation_config", None)
        for source in (getattr(gen, "eos_token_id", None), self.tokenizer.eos_token_id):
            for i in source if isinstance(source, (list, tuple)) else [source]:
                if isinstance(i, int) and i not in ids:
                    ids.append(i)
        return ids

    # -- the seam --------------------------------------------------------------------------------------

    def render(self, messages: Sequence[ChatMessage]) -> str:
        if self._template:
            chat = [{"role": m.role, "content": m.content} for m in messages]
            return str(self.tokenizer.apply_chat_template(chat, add_generation_prompt=True, tokenize=False))
        if hasattr(self.tokenizer, "build_chat_input"):  # ChatGLM3 without a template: role tags
            return "".join(f"<|{m.role}|>\n{m.content}" for m in messages) + "<|assistant|>\n"
        # ChatGLM2 (config has seq_length, tokenizer has build_prompt) numbers rounds from 1 with blank
        # lines; ChatGLM-6B from 0 with single newlines.
        chatglm2 = hasattr(self.config, "seq_length") or hasattr(self.tokenizer, "build_prompt")
        return chatglm_prompt(messages, first_round=1 if chatglm2 else 0, blank_lines=chatglm2)

    def encode(self, text: str) -> list[int]:
        """Token ids for ``text`` exactly as the model is fed them."""
        return list(self.tokenizer(text, add_special_tokens=self._add_special_tokens)["input_ids"])

    def count_tokens(self, text: str) -> int:
        return len(self.encode(text))

    def _stream_prompt(
        self, prompt: str, *, max_tokens: int, temperature: float, stop_event: threading.Event | None,
    ) -> Iterator[str]:
        import torch
        from transformers import StoppingCriteriaList, TextIteratorStreamer

        ids = torch.tensor([self.encode(prompt)], device=self._input_device())
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        closed = threading.Event()  # set when the consumer stops reading
        kwargs: dict[str, Any] = {
            "input_ids": ids,
            "attention_mask": torch.ones_like(ids),
            "max_new_tokens": max_tokens,
            "streamer": streamer,
            "stopping_criteria": StoppingCriteriaList([_StopOnEvent(stop_event, closed)]),
            "eos_token_id": self._eos or None,
            "pad_token_id": self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None
            else (self._eos[0] if self._eos else None),
        }
        if temperature > 0:
            kwargs.update(do_sample=True, temperature=temperature, top_p=0.9)
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        failure: list[BaseException] = []

        def run() -> None:
            try:
                with torch.inference_mode(), warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # generation-config chatter; errors still raise
                    self._model.generate(**kwargs)
            except BaseException as exc:  # re-raised in the consumer's thread
                failure.append(exc)
                streamer.end()

        thread = threading.Thread(target=run, name="kb-transformers-generate", daemon=True)
        thread.start()
        try:
            for piece in streamer:
                if stop_event is not None and stop_event.is_set():
                    break
                if piece:
                    yield piece
        finally:
            closed.set()
            thread.join()
        if failure:
            raise failure[0]

    @contextmanager
    def exclusive_model(self) -> Iterator[Any]:
        """The torch model, held under the generation guard (training, logits in tests)."""
        with self.exclusive():
            yield self._model

    def _input_device(self) -> Any:
        try:
            return next(p.device for p in self._model.parameters())
        except StopIteration:  # pragma: no cover
            return "cpu"


def read_config(path: Path) -> dict[str, Any]:
    """A checkpoint's config.json as a dict (for ``kb doctor``), or {} when absent or unreadable."""
    try:
        return dict(json.loads((path / "config.json").read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return {}

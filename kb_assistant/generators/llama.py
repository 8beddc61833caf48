"""llama.cpp backend: any local GGUF (the bundled Qwen, ChatGLM3/GLM-4 GGUFs, ...), on the CPU."""

from __future__ import annotations

import atexit
import os
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ..errors import ModelUnavailableError
from .base import ChatMessage, Generator

# Used only when a GGUF carries no chat template of its own.
_FALLBACK_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
    "<|im_start|>assistant\n"
)


class LlamaCppGenerator(Generator):
    """Streams from a GGUF with llama-cpp-python, using the chat template stored in the file."""

    def __init__(
        self,
        path: str | Path,
        *,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        vocab_only: bool = False,
        lora_path: str | Path | None = None,
    ) -> None:
        """Load a GGUF; ``vocab_only`` loads just its tokenizer and template (counting, no generation);
        ``lora_path`` applies a GGUF LoRA adapter (llama.cpp's convert_lora_to_gguf.py output)."""
        path = Path(path).expanduser()
        if not path.is_file():
            raise ModelUnavailableError(f"no GGUF model at {path}: give the path of a local .gguf file")
        try:
            from llama_cpp import Llama
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise ModelUnavailableError("pip install llama-cpp-python==0.3.36 to run GGUF models") from exc
        if lora_path is not None and not Path(lora_path).expanduser().is_file():
            raise ModelUnavailableError(f"no GGUF LoRA adapter at {lora_path}: give a local .gguf adapter file")
        try:
            self._llm = Llama(
                str(path),
                n_ctx=n_ctx,
                n_threads=n_threads or min(os.cpu_count() or 2, 8),
                vocab_only=vocab_only,
                lora_path=str(Path(lora_path).expanduser()) if lora_path else None,
                verbose=False,
            )
        except (ValueError, RuntimeError) as exc:
            raise ModelUnavailableError(f"llama.cpp could not load {path}: {exc}") from exc
        model = self._llm._model
        # Free the model before interpreter shutdown: llama-cpp-python's own finaliser runs too late
        # and prints "TypeError: 'NoneType' object is not callable" at exit.
        atexit.register(self._llm.close)
        self.name = path.name + (f"+{Path(lora_path).name}" if lora_path else "")
        # Measured: the bundled 0.5B model answers "[1] [2]" instead of the answer when asked to cite.
        self.follows_citation_instructions = model.n_params() >= 3_000_000_000
        trained = self._trained_context()
        allocated = n_ctx if vocab_only else self._llm.n_ctx()
        self.context_window = min(allocated, trained) if trained else allocated
        eos = model.token_get_text(self._llm.token_eos())
        bos_id = self._llm.token_bos()
        bos = model.token_get_text(bos_id) if bos_id >= 0 else ""
        template = self._llm.metadata.get("tokenizer.chat_template") or _FALLBACK_TEMPLATE
        self._formatter = Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos)
        # Fixed once here, so that render() changes no state a running stream reads.
        probe = self._formatter(messages=[{"role": "user", "content": ""}])
        self._stop = [eos] if eos else []
        self._stop += [s for s in probe.stop or [] if isinstance(s, str) and s not in self._stop]

    def _trained_context(self) -> int | None:
        meta = self._llm.metadata
        arch = meta.get("general.architecture", "")
        value = meta.get(f"{arch}.context_length")
        return int(value) if value else None

    def render(self, messages: Sequence[ChatMessage]) -> str:
        chat: list[Any] = [{"role": m.role, "content": m.content} for m in messages]
        return self._formatter(messages=chat).prompt

    def count_tokens(self, text: str) -> int:
        # Safe beside a running stream: llama_tokenize only reads the vocabulary (per-call tokenizer session),
        # it never touches the context that decodes; tests/generators/test_concurrency.py counts during streams.
        return len(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def _stream_prompt(
        self, prompt: str, *, max_tokens: int, temperature: float, stop_event: threading.Event | None,
    ) -> Iterator[str]:
        chunks = self._llm.create_completion(
            prompt, max_tokens=max_tokens, temperature=temperature, stream=True, stop=list(self._stop)
        )
        try:
            for chunk in chunks:
                if stop_event is not None and stop_event.is_set():
                    break
                text = chunk["choices"][0]["text"]  # type: ignore[index]
                if text:
                    yield text
        finally:
            chunks.close()  # type: ignore[union-attr]  # end llama.cpp's decode loop before the guard is released

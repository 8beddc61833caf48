"""OpenAI-compatible HTTP backend: vLLM, Xinference, Ollama, FastChat, llama-cpp-python's server ..."""

from __future__ import annotations

import json
import math
import re
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ..errors import KBError, ModelUnavailableError
from .base import ChatMessage, Generator

# Without the model's tokenizer, counts are estimated: one token per CJK character, one per three other
# characters (real BPEs average ~4 for English), plus 10% and a fixed allowance per message for the template.
APPROX_SAFETY = 1.10
APPROX_PER_MESSAGE = 8
DEFAULT_WINDOW = 4096
_CJK = re.compile(r"[\u3000-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef]")


def approximate_tokens(text: str) -> int:
    """A deliberately high estimate of tokens in ``text`` for any modern BPE tokenizer."""
    cjk = len(_CJK.findall(text))
    return math.ceil((cjk + (len(text) - cjk) / 3) * APPROX_SAFETY)


class OpenAICompatGenerator(Generator):
    """Streams chat completions (server-side template) or raw completions over HTTP with SSE."""

    # The server schedules concurrent requests itself (vLLM batches them); the bound keeps one process from
    # flooding it. Only the HTTP client is shared here, and httpx.Client is thread-safe.
    max_streams = 4

    def __init__(
        self,
        base_url: str,
        *,
        model: str | None = None,
        api_key: str | None = None,
        context_window: int | None = None,
        tokenizer_path: str | Path | None = None,
        timeout: float = 300.0,
    ) -> None:
        try:
            import httpx
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise ModelUnavailableError("the openai backend needs httpx: pip install httpx==0.28.1") from exc
        self.base_url = base_url.rstrip("/")
        if not re.search(r"/v\d+$", self.base_url):
            self.base_url += "/v1"
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(base_url=self.base_url, headers=headers,
                                    timeout=httpx.Timeout(timeout, connect=10.0))
        models = self._models()
        self.model = model or (models[0]["id"] if models else None)
        if not self.model:
            raise ModelUnavailableError(f"the server at {self.base_url} lists no models: set api_model (KB_API_MODEL)")
        served = next((m for m in models if m.get("id") == self.model), {})
        self.name = f"{self.model}@{self.base_url}"
        self.context_window = int(context_window or served.get("max_model_len") or DEFAULT_WINDOW)
        self._tokenizer: Any = None
        if tokenizer_path is not None:
            from transformers import AutoTokenizer

            try:
                self._tokenizer = AutoTokenizer.from_pretrained(
                    Path(tokenizer_path).expanduser(), local_files_only=True, trust_remote_code=True)
            except (OSError, ValueError) as exc:
                raise ModelUnavailableError(f"cannot load the tokenizer in {tokenizer_path}: {exc}") from exc
        self.token_counting = (
            f"exact (tokenizer {tokenizer_path})" if self._tokenizer is not None
            else f"approximate (CJK char = 1 token, 3 other chars = 1 token, +{APPROX_SAFETY - 1:.0%}, "
            f"+{APPROX_PER_MESSAGE} per message); set tokenizer_path for exact counts"
        )

    def _models(self) -> list[dict[str, Any]]:
        import httpx

        try:
            response = self._client.get("/models")
        except httpx.HTTPError as exc:
            raise ModelUnavailableError(f"cannot reach the OpenAI-compatible server at {self.base_url}: {exc}; "
                                        "is it running, and is base_url (KB_BASE_URL) right?") from exc
        if response.status_code in (401, 403):
            raise ModelUnavailableError(f"{self.base_url} refused the request ({response.status_code}): "
                                        "set api_key (KB_API_KEY)")
        if response.status_code >= 400:
            return []  # some servers have no /models; the model name must then be given
        return list(response.json().get("data") or [])

    # -- the seam --------------------------------------------------------------------------------------

    def render(self, messages: Sequence[ChatMessage]) -> str:
        """The prompt as the model would see it: the local tokenizer's template, else a ChatML rendering."""
        chat = [{"role": m.role, "content": m.content} for m in messages]
        if self._tokenizer is not None and getattr(self._tokenizer, "chat_template", None):
            return str(self._tokenizer.apply_chat_template(chat, add_generation_prompt=True, tokenize=False))
        return "".join(f"<|im_start|>{m.role}\n{m.content}<|im_end|>\n" for m in messages) + "<|im_start|>assistant\n"

    def count_tokens(self, text: str) -> int:
        if self._tokenizer is not None:
            return len(self._tokenizer(text, add_special_tokens=False)["input_ids"])
        return approximate_tokens(text) + APPROX_PER_MESSAGE * max(1, text.count("<|im_start|>"))

    def _stream_messages(
        self, messages: Sequence[ChatMessage], *, max_tokens: int, temperature: float,
        stop_event: threading.Event | None,
    ) -> Iterator[str]:
        """Chat completions: the server applies the model's own chat template."""
        body = {"messages": [{"role": m.role, "content": m.content} for m in messages]}
        return self._stream("/chat/completions", body, max_tokens=max_tokens, temperature=temperature,
                            stop_event=stop_event)

    def _stream_prompt(
        self, prompt: str, *, max_tokens: int, temperature: float, stop_event: threading.Event | None,
    ) -> Iterator[str]:
        """Raw completions of an already rendered prompt."""
        return self._stream("/completions", {"prompt": prompt}, max_tokens=max_tokens, temperature=temperature,
                            stop_event=stop_event)

    def _stream(
        self,
        path: str,
        body: dict[str, Any],
        *,
        max_tokens: int,
        temperature: float = 0.1,
        stop_event: threading.Event | None = None,
    ) -> Iterator[str]:
        import httpx

        payload = {**body, "model": self.model, "max_tokens": max_tokens, "temperature": temperature, "stream": True}
        try:
            with self._client.stream("POST", path, json=payload) as response:
                if response.status_code >= 400:
                    detail = response.read().decode("utf-8", "replace")[:300]
                    raise KBError(f"{self.base_url}{path} answered {response.status_code}: {detail}")
                for line in response.iter_lines():
                    if stop_event is not None and stop_event.is_set():
                        return  # leaving the block closes the connection; servers then stop generating
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        return
                    text = _delta_text(json.loads(data))
                    if text:
                        yield text
        except httpx.HTTPError as exc:
            raise ModelUnavailableError(f"the server at {self.base_url} failed mid-answer: {exc}") from exc

    def close(self) -> None:
        self._client.close()


def _delta_text(event: dict[str, Any]) -> str:
    if "error" in event:
        raise KBError(f"the server reported an error: {event['error']}")
    choices = event.get("choices") or []
    if not choices:
        return ""
    choice = choices[0]
    delta = choice.get("delta")
    if isinstance(delta, dict):
        return str(delta.get("content") or "")
    return str(choice.get("text") or "")

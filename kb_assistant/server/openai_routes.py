"""The OpenAI-compatible routes: ``/v1/models``, ``/v1/chat/completions`` (streamed and not) and
``/v1/embeddings``. ``model: "kb:NAME"`` answers from knowledge base NAME; the bare model id chats
with the answer model alone."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from ..generators.base import ChatMessage
from .auth import Caller
from .chat import KB_PREFIX, ChatParams, ChatRun, plain_text
from .deps import State, Who
from .errors import APIError, as_api_error, error_body, log
from .state import ServerState

router = APIRouter(prefix="/v1", tags=["OpenAI-compatible"])
POLL_S = 0.25  # how often a waiting request checks that its client is still there


class MessageIn(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[dict[str, Any]] | None = None


class ChatRequest(BaseModel):
    """OpenAI's chat request; fields not listed (n, user, seed ...) are accepted and ignored."""

    model_config = ConfigDict(extra="allow")
    model: str = Field(description="'kb:NAME' to answer from a knowledge base, or the bare model id")
    messages: list[MessageIn] = Field(min_length=1)
    stream: bool = False
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    stop: str | list[str] | None = None


class EmbeddingRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str = Field(description="'kb:NAME': that knowledge base's embedder")
    input: str | list[str] = Field(description="a text or a list of texts (embedded as passages)")
    encoding_format: Literal["float", "base64"] = "float"


@router.get("/models")
def list_models(state: State, who: Who) -> dict[str, Any]:
    """Every knowledge base as ``kb:NAME``, plus the bare answer model."""
    who.need("read")
    now = int(time.time())
    data = [{"id": f"{KB_PREFIX}{name}", "object": "model", "created": now, "owned_by": "kb-assistant"}
            for name in state.names() if who.sees(name)]
    data.append({"id": state.model_id(), "object": "model", "created": now, "owned_by": "kb-assistant"})
    return {"object": "list", "data": data}


def _params(body: ChatRequest, state: ServerState, who: Caller) -> ChatParams:
    if len(body.messages) > state.settings.server.max_messages:
        raise APIError(400, f"{len(body.messages)} messages is over this server's limit of "
                       f"{state.settings.server.max_messages} (server.max_messages): send the recent turns only",
                       code="too_many_messages", param="messages")
    if (body.model_extra or {}).get("n", 1) not in (1, None):
        raise APIError(400, "n must be 1: one answer per request", code="invalid_request", param="n")
    if body.model.startswith(KB_PREFIX):
        who.need("read", body.model[len(KB_PREFIX):])
    elif body.model != state.model_id():
        raise APIError(404, f"unknown model {body.model!r}: use 'kb:NAME' for a knowledge base or "
                       f"{state.model_id()!r} for the model alone (GET /v1/models lists them)",
                       code="model_not_found", param="model")
    else:
        who.need("read")
    roles = {"developer": "system"}
    messages = [ChatMessage(roles.get(m.role, m.role), plain_text(m.content))  # type: ignore[arg-type]
                for m in body.messages]
    stop = [body.stop] if isinstance(body.stop, str) else list(body.stop or [])
    return ChatParams(body.model, messages, body.temperature, body.max_completion_tokens or body.max_tokens, stop)


@router.post("/chat/completions", response_model=None)
async def chat_completions(body: ChatRequest, request: Request, state: State,
                           who: Who) -> Any:
    """Answer the last user message; ``kb_sources`` (numbered as the ``[n]`` markers) carry the citations."""
    params = _params(body, state, who)
    started = state.gate.enter()  # 429 here, before any work, when too many wait for the model
    try:
        run = await run_in_threadpool(_prepared, state, params)
    except BaseException:
        state.gate.leave(started)
        raise
    cid = f"chatcmpl-{uuid.uuid4().hex[:24]}"
    if body.stream:
        return StreamingResponse(_events(run, request, state, started, cid, body.model),
                                 media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
    try:
        worker = _Worker(run)
        await worker.wait(request)
        text, extra = await run_in_threadpool(run.finish)
    finally:
        state.gate.leave(started)
    return {"id": cid, "object": "chat.completion", "created": int(time.time()), "model": body.model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                         "finish_reason": run.finish_reason}], **extra}


def _prepared(state: ServerState, params: ChatParams) -> ChatRun:
    run = ChatRun(state, params)
    run.prepare()
    return run


class _Worker:
    """Runs a completion's generation in its own thread and hands its pieces to the event loop."""

    def __init__(self, run: ChatRun) -> None:
        self.run = run
        self.loop = asyncio.get_running_loop()
        self.queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        threading.Thread(target=self._work, name="kb-serve-answer", daemon=True).start()

    def _put(self, item: tuple[str, Any]) -> None:
        try:
            self.loop.call_soon_threadsafe(self.queue.put_nowait, item)
        except RuntimeError:  # the loop is gone (server shutting down): nobody is listening
            self.run.stop_event.set()

    def _work(self) -> None:
        try:
            for piece in self.run.pieces():
                self._put(("piece", piece))
            self._put(("end", None))
        except BaseException as exc:  # noqa: BLE001 - handed to the request, which reports it
            self._put(("error", exc))

    async def next(self, request: Request) -> tuple[str, Any]:
        """The next item; if the client disconnected meanwhile, the model is stopped and ("gone", None)."""
        while True:
            try:
                return await asyncio.wait_for(self.queue.get(), POLL_S)
            except TimeoutError:
                if await request.is_disconnected():
                    self.run.stop_event.set()
                    return "gone", None

    async def wait(self, request: Request) -> None:
        """Until generation ends (non-streamed); a disconnected client stops it."""
        while True:
            kind, value = await self.next(request)
            if kind == "error":
                raise value
            if kind in ("end", "gone"):
                return


def _sse(obj: Any) -> bytes:
    return f"data: {json.dumps(obj, ensure_ascii=False)}\n\n".encode()


async def _events(run: ChatRun, request: Request, state: ServerState, started: float, cid: str,
                  model: str) -> AsyncIterator[bytes]:
    """Server-sent events: a role chunk, one chunk per piece, a final chunk with finish_reason, usage and
    the kb fields, then ``data: [DONE]``. A client that leaves stops the model."""
    created = int(time.time())

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
        return _sse({"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                     "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra})

    try:
        worker = _Worker(run)
        yield chunk({"role": "assistant", "content": ""})
        while True:
            kind, value = await worker.next(request)
            if kind == "piece":
                yield chunk({"content": value})
            elif kind == "gone":
                return
            elif kind == "error":
                known = as_api_error(value)
                if known is None:
                    log.error("internal error while streaming an answer", exc_info=value)
                message = known.message if known else f"internal error ({type(value).__name__}): see the server log"
                yield _sse(error_body(known.status if known else 500, message))
                yield b"data: [DONE]\n\n"
                return
            else:
                text, extra = await run_in_threadpool(run.finish)
                yield chunk({}, run.finish_reason, kb_answer=text, **extra)
                yield b"data: [DONE]\n\n"
                return
    finally:
        run.stop_event.set()  # the client left mid-stream (cancelled here) or the stream ended
        state.gate.leave(started)


@router.post("/embeddings")
def embeddings(body: EmbeddingRequest, state: State,
               who: Who) -> dict[str, Any]:
    """Embed texts with a knowledge base's embedder (the vectors its search compares)."""
    if not body.model.startswith(KB_PREFIX):
        raise APIError(404, f"unknown embedding model {body.model!r}: use 'kb:NAME' (that knowledge base's "
                       "embedder)", code="model_not_found", param="model")
    name = body.model[len(KB_PREFIX):]
    who.need("read", name)
    texts = [body.input] if isinstance(body.input, str) else body.input
    if not texts or len(texts) > 2048:
        raise APIError(400, "input must hold 1 to 2048 texts", code="invalid_request", param="input")
    kb = state.kb(name)
    vectors = kb.embedder.embed_documents(texts)
    tokens = sum(len(t) for t in texts)  # embedders expose no tokenizer; characters are an upper bound

    def encode(v: Any) -> Any:  # base64: little-endian float32 bytes (the openai client's default)
        return base64.b64encode(v.astype("<f4").tobytes()).decode() if body.encoding_format == "base64" else v.tolist()

    return {"object": "list", "model": body.model,
            "data": [{"object": "embedding", "index": i, "embedding": encode(v)} for i, v in enumerate(vectors)],
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}

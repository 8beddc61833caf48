"""REST routes for knowledge bases: create, list, delete; upload files into a background indexing job;
job status; list and remove documents; search (retrieval only: never waits for the model)."""

from __future__ import annotations

import shutil
from pathlib import Path, PurePosixPath
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field
from starlette.datastructures import UploadFile

from ..errors import KBError
from .chat import source_fields
from .deps import State, Who
from .errors import APIError
from .jobs import Jobs
from .state import ServerState

router = APIRouter(prefix="/v1", tags=["knowledge bases"])
MAX_FILES = 1000  # parts in one upload


class CreateKB(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(description="1-64 letters, digits, '_', '-' or Chinese characters")


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    query: str = Field(min_length=1, max_length=4000)
    top_k: int | None = Field(None, ge=1, le=100)


def jobs_of(request: Request) -> Jobs:
    jobs: Jobs = request.app.state.jobs
    return jobs


@router.get("/kbs")
def list_kbs(state: State, who: Who) -> dict[str, Any]:
    """Knowledge bases this key may see, with documents, chunks and embedder."""
    from ..kb import kb_summaries

    who.need("read")
    rows = [vars(r) for r in kb_summaries(state.settings) if who.sees(r.name)]
    return {"object": "list", "data": [{"object": "kb", **r} for r in rows]}


@router.post("/kbs", status_code=201)
def create_kb(body: CreateKB, state: State, who: Who) -> dict[str, Any]:
    """Create an empty knowledge base with the server's embedder and chunk settings (admin scope)."""
    who.need("admin", body.name)
    if who.key is not None and who.key.kb is not None:
        raise APIError(403, f"key {who.key.id} is limited to knowledge base {who.key.kb!r} and cannot create one",
                       code="wrong_kb")
    if body.name in state.names():
        raise APIError(409, f"knowledge base {body.name!r} already exists (GET /v1/kbs lists them)",
                       code="kb_exists", param="name")
    kb = state.create_kb(body.name)
    return {"object": "kb", "name": kb.name, "embedder": kb.manifest.embedder_id, "dim": kb.manifest.embedder_dim}


@router.delete("/kbs/{name}")
def delete_kb(name: str, request: Request, state: State,
              who: Who) -> dict[str, Any]:
    """Delete a knowledge base and its files (admin scope); refused while one of its jobs runs."""
    from ..kb import delete_kb as delete

    who.need("admin", name)
    state.need_kb(name)  # 404 if unknown; not opened (a broken one can be deleted too)
    if jobs_of(request).active(name):
        raise APIError(409, f"knowledge base {name!r} has an indexing job running: wait for it "
                       "(GET /v1/jobs/ID), then delete", code="kb_busy")
    state.forget_kb(name)
    delete(state.settings, name)
    shutil.rmtree(uploads_of(state, name), ignore_errors=True)  # the copies the API stored for it
    return {"object": "kb", "name": name, "deleted": True}


def uploads_of(state: ServerState, name: str) -> Path:
    """Where uploads to knowledge base ``name`` are stored (as the web app stores them)."""
    return state.settings.data_dir / "uploads" / name


def _safe_name(raw: str | None) -> str:
    """The client's file name, refused (400) if it carries directories or is empty."""
    name = (raw or "").strip()
    plain = PurePosixPath(name.replace("\\", "/")).name
    if not name or name != plain or plain in (".", "..") or "\x00" in name:
        raise APIError(400, f"refused file name {raw!r}: send a plain file name without directories "
                       "(nothing was indexed)", code="unsafe_file_name", param="files")
    return name


@router.post("/kbs/{name}/documents", status_code=202)
async def upload(name: str, request: Request, state: State,
                 who: Who) -> dict[str, Any]:
    """Upload files (multipart/form-data, any number of ``files`` parts) into a background indexing job.

    Returns the job at once (202): poll ``GET /v1/jobs/{id}`` for per-file outcomes. A name with
    directories refuses the whole upload; an unsupported or oversized file is reported as refused."""
    from ingest import SUPPORTED_SUFFIXES

    from ..uploads import save_upload

    who.need("write", name)
    kb = await run_in_threadpool(state.kb, name)
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise APIError(400, "send the files as multipart/form-data (curl -F files=@report.pdf)", code="invalid_request")
    form = await request.form(max_files=MAX_FILES, max_fields=MAX_FILES)
    parts = [v for _, v in form.multi_items() if isinstance(v, UploadFile)]
    if not parts:
        raise APIError(400, "no files in the upload: send one or more 'files' parts", code="invalid_request",
                       param="files")
    names = [_safe_name(p.filename) for p in parts]
    allowed, limit = set(SUPPORTED_SUFFIXES), state.settings.max_file_mb << 20
    saved: list[tuple[str, Path]] = []
    refused: list[tuple[str, str]] = []
    folder = uploads_of(state, kb.name)
    for part, file_name in zip(parts, names, strict=True):
        suffix = Path(file_name).suffix.lower()
        if suffix not in allowed:
            refused.append((file_name, f"files of type {suffix or '(none)'} cannot be indexed; allowed: "
                            + " ".join(sorted(allowed))))
            continue
        if part.size is not None and part.size > limit:
            refused.append((file_name, f"{part.size >> 20} MB is over the {state.settings.max_file_mb} MB limit "
                            "(max_file_mb): split the file or raise the limit"))
            continue
        data = await part.read()
        try:
            path = await run_in_threadpool(save_upload, folder, file_name, data, allowed=allowed, max_bytes=limit)
        except KBError as exc:
            refused.append((file_name, str(exc)))
            continue
        saved.append((file_name, path))
    job = jobs_of(request).start(kb, saved, refused)
    return job.to_dict()


@router.get("/jobs/{job_id}")
def job_status(job_id: str, request: Request, who: Who) -> dict[str, Any]:
    """An indexing job: queued, running, done or failed, with each file's outcome."""
    job = jobs_of(request).get(job_id)
    if job is None:
        raise APIError(404, f"no job {job_id!r} (jobs live in the server's memory; a restart forgets them)",
                       code="job_not_found")
    who.need("read", job.kb)
    return job.to_dict()


@router.get("/kbs/{name}/documents")
def list_documents(name: str, state: State, who: Who) -> dict[str, Any]:
    who.need("read", name)
    docs = state.kb(name).documents()
    return {"object": "list", "data": [{"object": "kb.document", "file": d.source, "name": Path(d.source).name,
                                        "chunks": d.chunks, "pages": d.pages, "content_hash": d.content_hash}
                                       for d in docs]}


@router.delete("/kbs/{name}/documents")
def remove_document(name: str, state: State, who: Who,
                    file: Annotated[str, Query(description="an indexed file, as GET .../documents lists it")]
                    ) -> dict[str, Any]:
    """Remove one document (all its chunks)."""
    who.need("write", name)
    kb = state.kb(name)
    sources = {d.source for d in kb.documents()}
    if file not in sources:
        raise APIError(404, f"{file!r} is not a document of {name!r}: GET /v1/kbs/{name}/documents lists them",
                       code="document_not_found", param="file")
    report = kb.remove([file])
    stored = Path(file)
    if uploads_of(state, name).resolve() in stored.resolve().parents:  # our own copy of an upload
        stored.unlink(missing_ok=True)
    return {"object": "kb.removal", "files": [vars(o) for o in report.outcomes]}


@router.post("/kbs/{name}/search")
def search(name: str, body: SearchRequest, state: State,
           who: Who) -> dict[str, Any]:
    """Retrieval only, as ``kb search``: the most relevant passages with file, page, span, heading and relevance."""
    who.need("read", name)
    kb = state.kb(name)
    hits = kb.retriever(state.settings).search(body.query, body.top_k or state.settings.top_k)
    return {"object": "list", "data": [source_fields(n, s) for n, s in enumerate(hits, 1)]}

"""``kb serve``: an OpenAI-compatible API and a REST API over the knowledge bases, behind API keys.

- ``app.py``: the app factory, the body-size limit, ``serve`` (uvicorn) and the loopback rule
- ``keys.py`` / ``auth.py``: hashed API keys in SQLite; the 401/403 checks
- ``openai_routes.py`` + ``chat.py``: /v1/models, /v1/chat/completions (the ``kb ask`` path), /v1/embeddings
- ``kb_routes.py`` + ``jobs.py``: knowledge bases, uploads into background indexing jobs, documents, search
- ``state.py``: what one process holds (opened knowledge bases, the model, its bounded queue)
- ``errors.py``: every failure in OpenAI's error shape
"""

from .app import create_app, serve

__all__ = ["create_app", "serve"]

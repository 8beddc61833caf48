"""A real Milvus server for tests: the standalone build shipped by PyPI's ``milvus`` package.

Milvus 2.3 (the last release of that package) is older than the 2.5+ a team would run, but it is
the real server (its own etcd, segment store and gRPC proxy on a TCP port), so it exercises the
``http://host:19530`` path of ``MilvusStore`` that Milvus Lite cannot: state re-read on every
read, other clients' commits, the server's own index and filter engine, version differences.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest


@contextlib.contextmanager
def running_milvus(data_dir: Path) -> Iterator[str]:
    """Start Milvus standalone with its data in ``data_dir``; yields ``http://127.0.0.1:PORT``."""
    milvus = pytest.importorskip("milvus", reason="pip install milvus==2.3.5 to test against a Milvus server")
    server = milvus.MilvusServer()
    server.set_base_dir(str(data_dir))
    # Strong-consistency reads wait for the next time tick (200 ms by default, 2-3 per store call):
    # a test server ticks faster. Everything else stays at the shipped defaults.
    server.config.set("proxy.timeTickInterval", 20)
    # Its pid file goes to MILVUS_RUN_DIR (set by the launcher) or /run/milvus: keep it ours.
    os.environ.setdefault("MILVUS_RUN_DIR", str(data_dir / "run"))
    server.start()  # waits for the health endpoint
    try:
        yield f"http://127.0.0.1:{server.listen_port}"
    finally:
        server.stop()

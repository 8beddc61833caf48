"""Issue 5 figures: generation speed through kb-assistant's backends against their raw libraries.

1. The bundled GGUF (Qwen2.5-0.5B, Q4) on the same ~2,000-token prompt: time to first token and tokens/s
   through LlamaCppGenerator.stream_prompt vs raw llama-cpp-python create_completion; overhead as a ratio.
   Then the same model shared by N threads at once (the web app's case): the guard runs one stream at a
   time, so each later request waits for the earlier answers; printed: each one's wait and total time.
2. A small random GLM built here (hidden 512, 8 layers) through TransformersGenerator: fp32 vs int8 (torch
   dynamic) vs bf16 vs int4 (bitsandbytes NF4), time to first token on a ~500-token prompt and decode tokens/s.

    python bench/bench_generation.py [--prompt-tokens 2000] [--new-tokens 64] [--repeats 2] [--skip-gguf]
                                     [--concurrent 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kb_assistant.generators.base import ChatMessage  # noqa: E402

FILLER = ("员工每年有十五天带薪年假，请假超过三天需要部门经理批准。Backups are rotated every week and stored "
          "off site; expense claims must be filed within thirty days. ")


def long_messages(count_prompt, target: int) -> list[ChatMessage]:  # type: ignore[no-untyped-def]
    """System + user messages whose rendered prompt is about ``target`` tokens."""
    text = FILLER
    while count_prompt([ChatMessage("user", text)]) < target:
        text += FILLER
    ask = "\n请把上面的内容逐条详细复述一遍。Then restate it in English."  # a long answer: decode rate
    return [ChatMessage("system", "Answer from the sources."), ChatMessage("user", text + ask)]


def timed_stream(pieces) -> tuple[float, float, str]:  # type: ignore[no-untyped-def]
    """(time to first piece, total time, text) of a stream."""
    start = time.perf_counter()
    first = None
    out = []
    for piece in pieces:
        if first is None:
            first = time.perf_counter() - start
        out.append(piece)
    total = time.perf_counter() - start
    return first or total, total, "".join(out)


def bench_gguf(args: argparse.Namespace) -> None:
    from llama_cpp import Llama

    from kb_assistant.bundled import bundled_model_path
    from kb_assistant.generators.llama import LlamaCppGenerator

    path = bundled_model_path(Path(tempfile.gettempdir()) / "kb-bench-models")
    threads = min(os.cpu_count() or 2, 8)
    ours = LlamaCppGenerator(path, n_ctx=4096, n_threads=threads)
    raw = Llama(str(path), n_ctx=4096, n_threads=threads, verbose=False)
    prompt = ours.render(long_messages(ours.count_prompt, args.prompt_tokens))
    n_prompt = ours.count_tokens(prompt)
    print(f"bundled GGUF {path.name}: prompt {n_prompt} tokens, {args.new_tokens} new tokens, {threads} threads")
    results: dict[str, list[tuple[float, float, int]]] = {"kb-assistant": [], "raw llama-cpp": []}
    for _ in range(args.repeats):
        for name in results:
            if name == "kb-assistant":
                ours._llm.reset()  # no KV-prefix reuse between runs: each one pays the full prefill
                stream = ours.stream_prompt(prompt, max_tokens=args.new_tokens, temperature=0)
            else:
                raw.reset()
                stream = (c["choices"][0]["text"] for c in raw.create_completion(  # type: ignore[index,union-attr]
                    prompt, max_tokens=args.new_tokens, temperature=0, stream=True, stop=ours._stop))
            ttft, total, text = timed_stream(stream)
            results[name].append((ttft, total, ours.count_tokens(text)))
    row = "  {:16} ttft {:6.2f} s   decode {:6.1f} tok/s   ({} tokens)"
    summary = {}
    for name, runs in results.items():
        ttft = statistics.median(r[0] for r in runs)
        rate = statistics.median((r[2] - 1) / max(r[1] - r[0], 1e-9) for r in runs)
        summary[name] = (ttft, rate)
        print(row.format(name, ttft, rate, runs[-1][2]))
    (a_ttft, a_rate), (b_ttft, b_rate) = summary["kb-assistant"], summary["raw llama-cpp"]
    print(f"  overhead: ttft x{a_ttft / b_ttft:.3f}, decode speed x{a_rate / b_rate:.3f} (1.0 = none)")
    raw.close()
    if args.concurrent > 1:
        bench_shared(ours, args)
    ours._llm.close()


def bench_shared(gen, args: argparse.Namespace) -> None:  # type: ignore[no-untyped-def]
    """N threads ask at once; each waits its turn on the one loaded model (none crashes)."""
    import threading

    prompt = gen.render(long_messages(gen.count_prompt, args.small_prompt_tokens))
    alone = timed_stream(gen.stream_prompt(prompt, max_tokens=args.new_tokens, temperature=0))[1]
    barrier = threading.Barrier(args.concurrent)
    times: list[tuple[float, float, bool]] = []

    def ask() -> None:
        waited = threading.Event()
        barrier.wait()
        ttft, total, _ = timed_stream(gen.stream_prompt(prompt, max_tokens=args.new_tokens, temperature=0,
                                                        on_wait=waited.set))
        times.append((ttft, total, waited.is_set()))

    threads = [threading.Thread(target=ask) for _ in range(args.concurrent)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    print(f"  {args.concurrent} requests at once on one model (prompt ~{args.small_prompt_tokens} tokens): one alone "
          f"takes {alone:.2f} s; together {wall:.2f} s (x{wall / alone:.2f})")
    for ttft, total, waited in sorted(times):
        note = "  (waited its turn)" if waited else ""
        print(f"    first piece after {ttft:6.2f} s, done after {total:6.2f} s{note}")


def bench_transformers(args: argparse.Namespace) -> None:
    import torch

    from kb_assistant.generators.transformers_backend import TransformersGenerator
    from tests.generators.tiny_glm import build_tiny_glm

    with tempfile.TemporaryDirectory() as tmp:
        path = build_tiny_glm(Path(tmp) / "glm-small", hidden_size=512, layers=8, intermediate=1536,
                              max_positions=4096)
        print(f"\nsmall random GLM (hidden 512, 8 layers), prompt ~{args.small_prompt_tokens} tokens, "
              f"{args.new_tokens} new tokens, torch threads {torch.get_num_threads()}")
        base = None
        for quantize in ("none", "int8", "bf16", "int4"):
            try:
                gen = TransformersGenerator(path, quantize=quantize, device="cpu")
            except Exception as exc:  # noqa: BLE001 - a figure we cannot take is reported, not fatal
                print(f"  {quantize:5} unavailable: {exc}")
                continue
            messages = long_messages(gen.count_prompt, args.small_prompt_tokens)
            prompt = gen.render(messages)
            ids = torch.tensor([gen.encode(prompt)])
            ttfts, rates = [], []
            list(gen.stream_prompt(prompt, max_tokens=4, temperature=0))  # warm-up, not timed
            for _ in range(args.repeats):
                ttft, _, _ = timed_stream(_first(gen.stream_prompt(prompt, max_tokens=1, temperature=0)))
                start = time.perf_counter()
                with gen.exclusive_model() as model, torch.inference_mode():  # fixed length: EOS may come early
                    model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                   min_new_tokens=args.new_tokens, max_new_tokens=args.new_tokens,
                                   pad_token_id=gen._eos[0])
                total = time.perf_counter() - start
                ttfts.append(ttft)
                rates.append((args.new_tokens - 1) / max(total - ttft, 1e-9))
            with gen.exclusive_model() as model:
                weights = sum(p.numel() * p.element_size() for p in model.parameters()) + sum(
                    b.numel() * b.element_size() for b in model.buffers())
            ttft, rate = statistics.median(ttfts), statistics.median(rates)
            base = base or (ttft, rate)
            label = {"none": "fp32"}.get(quantize, quantize)
            note = " (+ packed int8 weights, not counted)" if quantize == "int8" else ""
            print(f"  {label:5} ttft {ttft:6.3f} s  decode {rate:6.1f} tok/s  (x{rate / base[1]:.2f} vs fp32)  "
                  f"parameters {weights / 1e6:.0f} MB{note}")
            del gen


def _first(stream):  # type: ignore[no-untyped-def]
    for piece in stream:
        yield piece
        return


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prompt-tokens", type=int, default=2000)
    ap.add_argument("--small-prompt-tokens", type=int, default=500)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--concurrent", type=int, default=3, help="threads sharing the GGUF model at once (1 = skip)")
    ap.add_argument("--skip-gguf", action="store_true")
    ap.add_argument("--skip-transformers", action="store_true")
    args = ap.parse_args()
    if not args.skip_gguf:
        bench_gguf(args)
    if not args.skip_transformers:
        bench_transformers(args)


if __name__ == "__main__":
    main()

"""The ``kb`` command line: one module per command group, user errors as one-line messages."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from ..errors import user_message
from . import chat, doctor, evaluate, feedback, finetune, gc, indexing, info, kbs, migrate, serve, watch

EPILOG = """\
examples:
  kb index ~/docs --kb policies          index a folder (recursive; re-runs skip unchanged files)
  kb index ~/docs --kb policies --prune  also remove documents whose files are gone
  kb remove ~/docs/old.pdf --kb policies  delete a document's chunks
  kb rebuild --kb policies                re-split every document (after changing chunk settings)
  kb watch ~/docs --kb policies           keep it in step as files are saved, moved, deleted (Ctrl-C stops)
  kb gc --all                             prune embedding caches of texts no document holds, compact stores
  kb kb create policies                   knowledge bases: kb kb list, kb kb delete NAME
  kb ask "年假有几天？" --kb policies      answer with cited sources, streamed
  kb ask "..." --json                     one JSON object: answer, citations, sources, prompt_tokens
  kb chat --kb policies                   multi-turn chat ('clear' resets, 'stop' or Ctrl-D leaves)
  kb search "报销流程" --kb policies        retrieval only, no model
  kb list                                 knowledge bases; kb list --kb NAME: its documents
  kb migrate --kb policies --to URI       copy to Milvus (a .db file or http://host:19530), verified
  kb eval data.json --retrieval-only      answer-hit@k, MRR and budget recall on a SQuAD-format file
  kb finetune data.jsonl --model DIR --method lora   train an adapter (lora, ptuning, freeze)
  kb ask "..." --adapter DIR              answer with it (KB_GENERATOR=transformers KB_MODEL_PATH=DIR)
  kb keys create --scope admin            an API key for `kb serve` (printed once)
  kb serve --port 8000                    OpenAI-compatible + REST API (model "kb:NAME"; docs at /docs)
  kb doctor --model-size 6B               installed backends, memory, which quantization fits

settings come from KB_* environment variables or a TOML file ($KB_CONFIG, default
~/.config/kb-assistant/config.toml), e.g. KB_DATA_DIR, KB_EMBEDDER, KB_MODEL_PATH, KB_TOP_K.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kb",
        description="Ask questions over your own documents, offline, with answers that cite file and page.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--data-dir", help="where knowledge bases and models live (KB_DATA_DIR)")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in (indexing, watch, gc, chat, info, kbs, evaluate, migrate, finetune, doctor, feedback, serve):
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``kb`` console script; returns the exit code (0 ok, 1 error, 2 usage)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `kb list | head -1`: the reader left; end quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except Exception as exc:
        message = user_message(exc)
        if message is None or args.debug or os.environ.get("KB_RAISE"):
            raise
        print(f"error: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

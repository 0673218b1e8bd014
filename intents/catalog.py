"""The matcher's index, built once from a KnowledgeBase (``Catalog.build``).

Owns: the list of matchable entries (every sample question in every language plus each
intent's official Japanese terms), their pre-computed match views (Latin: normalised and
diacritic-folded, words kept; CJK: normalised, kana folded, spaces removed), and a
character n-gram TF-IDF inverted index used as the second signal next to rapidfuzz.
Nothing here reads files: the caller passes the KnowledgeBase in.
Must not import bot/ or scheduler/; from knowledge/ only the KnowledgeBase type.
"""
from __future__ import annotations

import math
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from intents.normalize import fold_diacritics, fold_kana, is_cjk_text, normalize

if TYPE_CHECKING:  # pragma: no cover
    from knowledge.loader import KnowledgeBase

#: Language label of an intent's official terms (they are Japanese words on paper).
TERM_LANG = "ja"


def match_key(text: str) -> str:
    """The one folded form used for indexing and querying (already normalised input OK)."""
    return fold_kana(fold_diacritics(normalize(text)))


def content_view(key: str) -> str:
    """Latin key without function words (unless nothing else is left), tokens sorted: the
    string rapidfuzz compares, so "saan ang …" is not similar to every Tagalog sample."""
    words = key.split()
    content = [w for w in words if w not in STOPWORDS] or words
    return " ".join(sorted(content))


def cjk_view(key: str) -> str:
    """CJK is written without spaces (and Korean spacing varies): compare characters only."""
    return key.replace(" ", "")


NGRAM_SIZES = (3, 4)
#: Function words of the Latin-script languages (diacritics folded). They still count, at a
#: quarter of a content word: with few samples in a language, idf alone cannot tell that
#: Tagalog "ang" or romaji "ni" say as little as English "the".
_STOPWORD_LINES = (
    "the a an is are am was be to of in on at for and or it this that my me i you your do does can",
    "with from by as",
    "no ni wa ga wo de to ka mo ne yo desu masu",            # romaji Japanese particles
    "ang ng sa mga po ba ko mo na ay si",                     # Tagalog
    "di ke yang dan itu ini dari untuk dengan",               # Indonesian
    "o a os as de do da dos das que e em um uma na",          # Portuguese
    "la cua thi ma va cho voi nhung cac mot",                 # Vietnamese (folded)
)
STOPWORDS = frozenset(" ".join(_STOPWORD_LINES).split())
STOPWORD_WEIGHT = 0.25
JAMO_WEIGHT = 0.3
WORD_NGRAM_MASS = 4.0


def ngram_features(key: str) -> Counter:
    """Character n-gram features of a folded key.

    Latin-ish words: 2-4-grams of the space-padded word plus the whole word (so a typo
    costs a few n-grams, not the match). CJK runs: single characters and bigrams, because
    one Han character already carries meaning and there are no spaces to split on; Hangul
    words also give jamo trigrams.
    """
    feats: Counter = Counter()
    for word in key.split():
        if is_cjk_text(word):
            chars = word
            for i, ch in enumerate(chars):
                feats["1:" + ch] += 1
                if i + 1 < len(chars):
                    feats["2:" + chars[i:i + 2]] += 1
            if any("\uac00" <= c <= "\ud7a3" for c in word):
                # Korean verb endings change the last syllable block (버리다 → 버려요 → 버릴);
                # letter (jamo) trigrams still see the shared stem.
                jamo = unicodedata.normalize("NFD", word)
                for i in range(len(jamo) - 2):
                    feats["j:" + jamo[i:i + 3]] += JAMO_WEIGHT
        else:
            weight = STOPWORD_WEIGHT if word in STOPWORDS else 1.0
            feats["w:" + word] += weight
            padded = f" {word} "
            grams = [f"{n}:" + padded[i:i + n] for n in NGRAM_SIZES for i in range(len(padded) - n + 1)]
            # Every word carries the same n-gram mass, so a long common word ("registration")
            # cannot drown the short word that decides the intent ("birth").
            share = weight * WORD_NGRAM_MASS / max(1, len(grams))
            for g in grams:
                feats[g] += share
    # CJK bigrams across the (optional) spaces of Korean/Japanese writing.
    compact = cjk_view(key)
    if is_cjk_text(compact) and " " in key:
        for i in range(len(compact) - 1):
            feats["2:" + compact[i:i + 2]] += 0.5
    return feats


def _tf(count: float) -> float:
    """Sublinear term frequency that also takes fractional (per-word shared) counts."""
    return 1.0 + math.log(count) if count >= 1.0 else count


@dataclass(frozen=True)
class Entry:
    intent: str
    lang: str
    text: str
    key: str
    cjk: bool
    is_term: bool = False


class Postings:
    """Inverted index in two flat arrays: one slice per feature, so a query's dot product
    with every doc is one concatenate + one bincount instead of a Python loop of adds."""

    def __init__(self, lists: dict[str, tuple[list[int], list[float]]], n_docs: int):
        self.n_docs = n_docs
        self.span: dict[str, tuple[int, int]] = {}
        ids: list[int] = []
        ws: list[float] = []
        for f, (fid, fw) in lists.items():
            self.span[f] = (len(ids), len(ids) + len(fid))
            ids.extend(fid)
            ws.extend(fw)
        self.ids = np.asarray(ids, dtype=np.int32)
        self.weights = np.asarray(ws, dtype=np.float32)

    def get(self, f: str):
        return self.span.get(f)

    def dot(self, vec: dict[str, float]) -> np.ndarray:
        span = self.span
        ids_parts: list[np.ndarray] = []
        w_parts: list[np.ndarray] = []
        for f, w in vec.items():
            ab = span.get(f)
            if ab is not None:
                ids_parts.append(self.ids[ab[0]:ab[1]])
                w_parts.append(self.weights[ab[0]:ab[1]] * w)
        if not ids_parts:
            return np.zeros(self.n_docs, dtype=np.float32)
        return np.bincount(np.concatenate(ids_parts), weights=np.concatenate(w_parts),
                           minlength=self.n_docs).astype(np.float32)


class TfidfIndex:
    """Sparse char n-gram TF-IDF with an inverted index; cosine against every entry in one pass."""

    def __init__(self, docs: list[Counter], groups: list[str] | None = None):
        """``groups`` names each doc's language (and script): a feature's idf is its lowest
        idf within any one group, so a function word of a language with few samples
        (Tagalog "ang", romaji "ni") is as cheap as "the" is in English, instead of looking
        rare because the whole corpus has few Tagalog samples."""
        self.n_docs = len(docs)
        groups = groups or [""] * len(docs)
        df: Counter = Counter()
        group_df: dict[str, Counter] = defaultdict(Counter)
        group_n: Counter = Counter(groups)
        for feats, g in zip(docs, groups):
            df.update(feats.keys())
            group_df[g].update(feats.keys())
        self.df = df
        idf: dict[str, float] = {}
        for g, counts in group_df.items():
            n = group_n[g]
            for f, d in counts.items():
                value = math.log((1 + n) / (1 + d)) + 1.0
                if value < idf.get(f, math.inf):
                    idf[f] = value
        self.idf = idf
        self.vectors = [self._weigh(feats) for feats in docs]
        self.postings = self._postings(self.vectors)

    def _weigh(self, feats: Counter) -> dict[str, float]:
        vec = {f: _tf(c) * self.idf.get(f, 0.0) for f, c in feats.items() if c > 0}
        norm = math.sqrt(sum(w * w for w in vec.values())) or 1.0
        return {f: w / norm for f, w in vec.items() if w > 0}

    @staticmethod
    def _postings(vectors: list[dict[str, float]]) -> Postings:
        lists: dict[str, tuple[list[int], list[float]]] = defaultdict(lambda: ([], []))
        for doc_id, vec in enumerate(vectors):
            for f, w in vec.items():
                ids, ws = lists[f]
                ids.append(doc_id)
                ws.append(w)
        return Postings(lists, len(vectors))

    def grouped(self, groups: list[int], n_groups: int) -> tuple[Postings, np.ndarray, np.ndarray]:
        """Centroids of groups of docs (an intent's entries): their postings (unit length),
        the length of each unnormalised sum, and each doc's dot product with its own group's
        sum (both let calibration take one doc out of its centroid exactly)."""
        sums: list[dict[str, float]] = [defaultdict(float) for _ in range(n_groups)]
        for vec, g in zip(self.vectors, groups):
            for f, w in vec.items():
                sums[g][f] += w
        norms = np.asarray([math.sqrt(sum(w * w for w in vec.values())) for vec in sums], dtype=np.float32)
        self_dot = np.asarray([sum(w * sums[g][f] for f, w in vec.items()) for vec, g in zip(self.vectors, groups)],
                              dtype=np.float32)
        cents = [{f: w / (norm or 1.0) for f, w in vec.items()} for vec, norm in zip(sums, norms)]
        return self._postings(cents), norms, self_dot

    def query_vector(self, feats: Counter) -> tuple[dict[str, float], float]:
        """The query's unit TF-IDF vector and the share of its n-grams the index knows."""
        if not feats:
            return {}, 0.0
        known = sum(1 for f in feats if f in self.idf)
        # Unknown n-grams get the highest idf: they are evidence the query is about something else.
        max_idf = math.log(1 + self.n_docs) + 1.0
        vec = {f: _tf(c) * self.idf.get(f, max_idf) for f, c in feats.items() if c > 0}
        norm = math.sqrt(sum(w * w for w in vec.values())) or 1.0
        return {f: w / norm for f, w in vec.items()}, known / len(feats)

    @staticmethod
    def cosine(vec: dict[str, float], postings: Postings, size: int | None = None) -> np.ndarray:
        return postings.dot(vec)

    def query(self, feats: Counter) -> tuple[np.ndarray, float]:
        """Cosine to every doc, and the share of the query's n-grams the index knows (0..1)."""
        vec, known = self.query_vector(feats)
        return self.cosine(vec, self.postings, self.n_docs), known


class Catalog:
    """Every matchable entry and its views, plus the intent table and flags."""

    def __init__(self, entries: list[Entry], intent_ids: list[str], urgent: Iterable[str]):
        self.entries = entries
        self.intent_ids = intent_ids
        self.intent_pos = {iid: i for i, iid in enumerate(intent_ids)}
        self.urgent = frozenset(urgent)
        self.entry_intent = np.asarray([self.intent_pos[e.intent] for e in entries], dtype=np.int32)
        self.langs = sorted({e.lang for e in entries})
        self.entry_lang = np.asarray([self.langs.index(e.lang) for e in entries], dtype=np.int16)
        self.latin_choices = [e.key if not e.cjk else "" for e in entries]
        self.cjk_choices = [cjk_view(e.key) if e.cjk else "" for e in entries]
        self.tfidf = TfidfIndex([ngram_features(e.key) for e in entries],
                                [f"{e.lang}-{'cjk' if e.cjk else 'latin'}" for e in entries])
        self.centroids, self.centroid_norms, self.centroid_self_dot = self.tfidf.grouped(
            self.entry_intent.tolist(), len(intent_ids))
        # Exact (folded) text → intents having it; used for an unambiguous short-cut.
        exact: dict[str, set[str]] = defaultdict(set)
        for e in entries:
            exact[cjk_view(e.key) if e.cjk else e.key].add(e.intent)
        self.exact = {k: next(iter(v)) for k, v in exact.items() if len(v) == 1 and k}

    @classmethod
    def build(cls, kb: KnowledgeBase) -> Catalog:
        entries: list[Entry] = []
        seen: set[tuple[str, str]] = set()
        for iid, intent in kb.intents.items():
            items: list[tuple[str, str, bool]] = []
            for lang, samples in intent.samples.items():
                items.extend((lang, s, False) for s in samples)
            items.extend((TERM_LANG, t, True) for t in intent.terms)
            for lang, text, is_term in items:
                key = match_key(text)
                if not key or (iid, key) in seen:
                    continue
                seen.add((iid, key))
                entries.append(Entry(iid, lang, text, key, is_cjk_text(key), is_term))
        return cls(entries, list(kb.intents), [i for i, x in kb.intents.items() if x.urgent])

    def __len__(self) -> int:
        return len(self.entries)

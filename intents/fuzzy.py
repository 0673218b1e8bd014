"""The previous nearest-sample matcher (rapidfuzz + TF-IDF over every sample), kept for comparison.

The bot uses ``intents.matcher.Matcher`` (a trained model); ``make bench`` and the
ablation in ``bench/bench_matcher.py`` still measure this one side by side ("old
matcher"). Its thresholds are frozen in ``intents/data/fuzzy_thresholds.yaml`` (the last
leave-one-out calibration). Owns ``FuzzyThresholds`` and ``FuzzyMatcher``.
``FuzzyMatcher.from_knowledge`` builds the index once (``intents.catalog.Catalog``).
Must not import bot/ or scheduler/; from knowledge/ only the KnowledgeBase type.

How a message is scored
1. ``normalize`` + diacritic and kana folding (``intents.catalog.match_key``).
2. The language: forced by the caller, else ``detect_language``. Latin words the index
   does not know get their closest known word added (rapidfuzz ``extractOne`` over the
   index vocabulary, ``Matcher.spell``), so "hospitl" still finds "hospital".
3. Two signals against every entry (sample question or official term):
   - rapidfuzz with a scorer per script. Latin text is word-based: ``token_sort_ratio``
     on the content words (function words of en/ja-romaji/tl/id/pt/vi dropped, see
     ``catalog.content_view``), computed as ``fuzz.ratio`` on the token-sorted strings with
     the choices prepared once at build time. CJK text has no spaces: ``fuzz.ratio`` on
     the characters with spaces removed. Processors are applied explicitly beforehand
     (RapidFuzz 3 does no preprocessing by default), so ``processor=None`` is deliberate.
     Scores are rescaled above the message's median score (the "shares letters with
     everything" floor).
   - cosine similarity of character n-gram TF-IDF vectors (catches partial words and
     misspellings; idf per language so function words stay cheap in every language).
   The entry score is a weighted mean, multiplied by a small penalty when the entry's
   language is not the message's language (residents mix languages, so all are kept).
4. An intent's score mixes the mean of its ``top_k`` best entries (one lucky sample is
   weak evidence; several agreeing samples are strong), optionally its single best entry
   (``w_max``), and the cosine to the intent's TF-IDF centroid (``w_centroid``: all its
   samples together, so words spread over several samples still add up).
   ``confidence`` is the top intent's score.
5. The decision uses the calibrated thresholds in ``intents/thresholds.yaml``
   (frozen). An exact (folded) sample match answers at once.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import yaml
from rapidfuzz import fuzz, process

from intents.catalog import STOPWORDS, Catalog, cjk_view, content_view, match_key, ngram_features
from intents.langdetect import detect_language
from intents.matcher import Decision, Match
from intents.normalize import is_cjk_text

if TYPE_CHECKING:  # pragma: no cover
    from knowledge.loader import KnowledgeBase



_LETTER = re.compile(r"[^\s\d]")

#: rapidfuzz ratio a known word needs to stand in for an unknown one, and the weight of its n-grams.
SPELL_CUTOFF = 80
SPELL_WEIGHT = 0.7

#: Only the start of a very long message is matched (rapidfuzz cost grows with length).
MAX_CHARS = 300

THRESHOLDS_FILE = Path(__file__).resolve().parent / "data" / "fuzzy_thresholds.yaml"
__all__ = ["Decision", "FuzzyMatcher", "FuzzyThresholds", "Match"]


@dataclass(frozen=True)
class FuzzyThresholds:
    """Decision thresholds and scoring weights, calibrated into ``intents/thresholds.yaml``.

    The defaults here are only used without that file (they are a copy of one calibration).
    """

    #: top intent score needed to answer straight away…
    answer: float = 0.14
    #: …and its lead over the runner-up intent.
    margin: float = 0.09
    #: below this the message is out of scope: decline.
    clarify: float = 0.14
    #: an urgent intent (emergency) on top with at least this score is answered, never clarified.
    urgent: float = 0.24
    #: share of the message's character n-grams the index must know (gibberish guard).
    min_known: float = 0.0
    #: weight of the TF-IDF cosine in an entry's score (the rest is rapidfuzz).
    w_tfidf: float = 0.7
    #: entry score multiplier when the entry's language differs from the message's.
    other_language: float = 1.0
    #: intent score = (1 - w_centroid) * ((1 - w_max) * mean(top_k entries) + w_max * best entry)
    #:                + w_centroid * cosine to the intent centroid
    top_k: int = 3
    #: rescale rapidfuzz scores above the message's median score (see Matcher.signals).
    rf_floor: bool = True
    w_max: float = 0.0
    w_centroid: float = 0.6
    #: how many suggestions a clarify offers.
    suggestions: int = 3
    #: provenance written by calibrate (not used for matching).
    source: dict = field(default_factory=dict, compare=False)

    @classmethod
    def load(cls, path: Path | str | None = None) -> FuzzyThresholds:
        path = Path(path) if path else THRESHOLDS_FILE
        if not path.exists():
            return cls()
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        names = {f.name for f in fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"{path}: unknown threshold keys {sorted(unknown)}")
        return cls(**data)

    def dump(self) -> dict:
        return asdict(self)


@dataclass
class Scored:
    """Raw scores of one message, before the decision (used by calibrate and evaluate)."""

    key: str
    language: str
    language_confidence: float
    intent_scores: np.ndarray      # per catalog intent
    known: float
    has_letters: bool
    exact: str | None = None

    def ranked(self, k: int) -> list[int]:
        if not len(self.intent_scores):
            return []
        k = min(k, len(self.intent_scores))
        idx = np.argpartition(-self.intent_scores, k - 1)[:k]
        return sorted(idx.tolist(), key=lambda i: (-float(self.intent_scores[i]), i))


class FuzzyMatcher:
    """Matches messages against an index built once from the knowledge base."""

    def __init__(self, catalog: Catalog, thresholds: FuzzyThresholds | None = None):
        self.catalog = catalog
        self.thresholds = thresholds or FuzzyThresholds.load()
        entries = catalog.entries
        # Entry indices per intent, padded with len(entries) (which reads as score 0), so the
        # top-k per intent is one np.partition over a small matrix.
        n, g = len(entries), len(catalog.intent_ids)
        per_intent: list[list[int]] = [[] for _ in range(g)]
        for i, iid in enumerate(catalog.entry_intent.tolist()):
            per_intent[iid].append(i)
        # Catalog.build appends entries intent by intent, so each intent is one slice.
        assert all(np.diff(catalog.entry_intent) >= 0), "catalog entries must be grouped by intent"
        self._starts = np.flatnonzero(np.r_[True, np.diff(catalog.entry_intent) != 0]) if n else np.zeros(0, int)
        self._seg_intent = catalog.entry_intent[self._starts] if n else np.zeros(0, int)
        width = max([len(x) for x in per_intent] + [1])
        self._grid = np.full((g, width), n, dtype=np.int32)
        for row, idx in enumerate(per_intent):
            self._grid[row, :len(idx)] = idx
        self._is_term = np.asarray([e.is_term for e in entries], dtype=bool)
        self._lang_codes = {lang: i for i, lang in enumerate(catalog.langs)}
        self._latin_idx = np.flatnonzero([not e.cjk for e in entries])
        self._cjk_idx = np.flatnonzero([e.cjk for e in entries])
        self._latin_sorted = [content_view(entries[i].key) for i in self._latin_idx]
        # Known Latin content words, sorted so the spelling correction is deterministic.
        self._vocab = sorted({w for e in entries if not e.cjk for w in e.key.split()
                              if len(w) >= 3 and w not in STOPWORDS and w.isalpha()})
        self._vocab_set = frozenset(self._vocab)
        self._cjk_choices = [cjk_view(entries[i].key) for i in self._cjk_idx]

    @classmethod
    def from_knowledge(cls, kb: KnowledgeBase, thresholds: FuzzyThresholds | None = None) -> FuzzyMatcher:
        return cls(Catalog.build(kb), thresholds)

    # ---- scoring --------------------------------------------------------------------
    def signals(self, key: str) -> tuple[np.ndarray, np.ndarray, float, np.ndarray]:
        """Per entry: TF-IDF cosine and rapidfuzz score (both 0..1); the share of the
        message's n-grams the index knows; per intent: cosine to the intent's centroid."""
        cat = self.catalog
        n = len(cat.entries)
        feats = ngram_features(key)
        spelled = self.spell(key)
        if spelled != key:
            # Keep what was typed and add the corrected words at a discount: a word the index
            # lacks may be a typo of a known word or a new word that only looks like one.
            for f, c in ngram_features(spelled).items():
                if f not in feats:
                    feats[f] = SPELL_WEIGHT * c
        vec, known = cat.tfidf.query_vector(feats)
        cos = cat.tfidf.postings.dot(vec)
        cc = cat.centroids.dot(vec)
        rf = np.zeros(n, dtype=np.float32)
        raw = None
        if is_cjk_text(key):
            if len(self._cjk_idx):
                raw = process.cdist([cjk_view(key)], self._cjk_choices, scorer=fuzz.ratio,
                                    processor=None, dtype=np.float32)[0]
                idx = self._cjk_idx
        elif len(self._latin_idx):
            # token_sort_ratio == ratio of the token-sorted strings; the choices are sorted once
            # at build time, which makes this ~10x faster than calling token_sort_ratio.
            raw = process.cdist([content_view(spelled)], self._latin_sorted, scorer=fuzz.ratio,
                                processor=None, dtype=np.float32)[0]
            idx = self._latin_idx
        if raw is not None:
            # Any two sentences of one script share letters, so ratio has a floor that depends
            # on the message (length, common letters). Rescale above this message's median
            # score so "shares some letters with everything" counts as nothing.
            # (The median of a strided sample: as good a floor, a fraction of the cost.)
            floor = float(np.median(raw[::max(1, len(raw) // 512)])) if self.thresholds.rf_floor else 0.0
            rf[idx] = np.clip((raw - floor) / max(1e-6, 100.0 - floor), 0.0, 1.0)
        return cos, rf, known, cc

    def spell(self, key: str) -> str:
        """Latin words the index does not know, replaced by the closest known word when
        rapidfuzz finds one at >= SPELL_CUTOFF ("salery" → "salary", "hospitl" → "hospital")."""
        words = key.split()
        changed = False
        for i, w in enumerate(words):
            if len(w) < 4 or w in self._vocab_set or not w.isalpha() or is_cjk_text(w):
                continue
            hit = process.extractOne(w, self._vocab, scorer=fuzz.ratio, processor=None, score_cutoff=SPELL_CUTOFF)
            if hit is not None:
                words[i] = hit[0]
                changed = True
        return " ".join(words) if changed else key

    def same_language(self, language: str) -> np.ndarray:
        """Entries in ``language`` (official terms count as every language)."""
        code = self._lang_codes.get(language)
        if code is None:
            return self._is_term
        return (self.catalog.entry_lang == code) | self._is_term

    @staticmethod
    def combine(cos: np.ndarray, rf: np.ndarray, same: np.ndarray, w_tfidf: float,
                other_language: float) -> np.ndarray:
        s = w_tfidf * cos + (1.0 - w_tfidf) * rf
        if other_language != 1.0:
            s = np.where(same, s, s * other_language)
        return s

    def centroid_without(self, cc: np.ndarray, cos: np.ndarray, entry: int) -> np.ndarray:
        """Centroid cosines as if ``entry`` were not in its intent (leave-one-out)."""
        cat = self.catalog
        g = int(cat.entry_intent[entry])
        norm = float(cat.centroid_norms[g])
        rest2 = norm * norm - 2.0 * float(cat.centroid_self_dot[entry]) + 1.0
        out = cc.copy()
        out[g] = (float(cc[g]) * norm - float(cos[entry])) / np.sqrt(rest2) if rest2 > 1e-9 else 0.0
        return out

    def aggregate(self, s: np.ndarray, cc: np.ndarray, top_k: int | None = None, w_max: float | None = None,
                  w_centroid: float | None = None) -> np.ndarray:
        """Intent scores from entry scores ``s`` and centroid cosines ``cc`` (see module doc)."""
        th = self.thresholds
        k = th.top_k if top_k is None else top_k
        wm = th.w_max if w_max is None else w_max
        wc = th.w_centroid if w_centroid is None else w_centroid
        if not len(s):
            return np.zeros(len(self.catalog.intent_ids), dtype=np.float32)
        k = max(1, min(k, self._grid.shape[1]))
        # Bounds from each intent's best entry (mean of top-k is between best/k and best) let
        # us compute the exact score only for intents that can still reach the top; the rest
        # get their lower bound, which keeps the top (suggestions + 1) ranking exact.
        best = np.zeros(len(cc), dtype=np.float32)
        best[self._seg_intent] = np.maximum.reduceat(s, self._starts)
        lower = (1.0 - wc) * ((1.0 - wm) * best / k + wm * best) + wc * cc
        upper = (1.0 - wc) * best + wc * cc
        n_top = min(len(lower), th.suggestions + 1)
        bar = np.partition(lower, len(lower) - n_top)[len(lower) - n_top]
        cand = np.flatnonzero(upper >= bar)
        m = np.append(s, np.float32(0.0))[self._grid[cand]]
        top = np.partition(m, m.shape[1] - k, axis=1)[:, -k:]
        out = lower.astype(np.float32)
        entry_part = (1.0 - wm) * top.mean(axis=1) + wm * best[cand]
        out[cand] = (1.0 - wc) * entry_part + wc * cc[cand]
        return out

    def score(self, text: str, lang: str | None = None, exclude: int | None = None) -> Scored:
        """Per-intent scores of ``text``; ``exclude`` hides one entry (leave-one-out calibration)."""
        cat = self.catalog
        th = self.thresholds
        # A pasted letter is not a question the index can match; keep the cost bounded.
        key = match_key(text[:MAX_CHARS])
        if lang:
            language, lang_conf = lang, 1.0
        else:
            language, lang_conf = detect_language(text)
        has_letters = _LETTER.search(key) is not None
        if not key or not len(cat.entries):
            return Scored(key, language, lang_conf, np.zeros(len(cat.intent_ids), np.float32), 0.0, has_letters)
        cos, rf, known, cc = self.signals(key)
        s = self.combine(cos, rf, self.same_language(language), th.w_tfidf, th.other_language)
        if exclude is not None:
            s[exclude] = 0.0
            cc = self.centroid_without(cc, cos, exclude)
        intent_scores = self.aggregate(s, cc)
        exact = None
        if exclude is None or cat.entries[exclude].key != key:
            exact = cat.exact.get(cjk_view(key) if is_cjk_text(key) else key)
        # No real evidence of the language: take the best matching entry's when its script agrees.
        if not lang and lang_conf < 0.2 and has_letters:
            best = int(np.argmax(s))
            if s[best] > 0:
                e = cat.entries[best]
                if not e.is_term and e.cjk == is_cjk_text(key):
                    language = e.lang
        return Scored(key, language, lang_conf, intent_scores, known, has_letters, exact)

    # ---- decision -------------------------------------------------------------------
    def decide(self, scored: Scored, text: str) -> Match:
        th = self.thresholds
        cat = self.catalog
        lang, lconf = scored.language, scored.language_confidence

        def decline(conf: float = 0.0) -> Match:
            return Match(text, None, "decline", conf, lang, [], lconf)

        if scored.exact is not None:
            return Match(text, scored.exact, "answer", 1.0, lang, [], lconf)
        if not scored.key or not scored.has_letters:
            return decline()      # empty, emoji only, punctuation only, digits only
        top = scored.ranked(th.suggestions + 1)
        if not top:
            return decline()
        best = float(scored.intent_scores[top[0]])
        second = float(scored.intent_scores[top[1]]) if len(top) > 1 else 0.0
        best_id = cat.intent_ids[top[0]]
        if best < th.clarify or scored.known < th.min_known:
            return decline(best)
        if best_id in cat.urgent and best >= th.urgent:
            return Match(text, best_id, "answer", best, lang, [], lconf)
        if best >= th.answer and best - second >= th.margin:
            return Match(text, best_id, "answer", best, lang, [], lconf)
        suggestions = [cat.intent_ids[i] for i in top[:th.suggestions]]
        return Match(text, best_id, "clarify", best, lang, suggestions, lconf)

    def match(self, text: str, lang: str | None = None) -> Match:
        """Decide what ``text`` asks; ``lang`` forces the language instead of detecting it."""
        return self.decide(self.score(text or "", lang), text or "")

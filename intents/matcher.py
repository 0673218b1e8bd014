"""Intent matching: one message in, one decision out (answer / clarify / decline).

Owns ``Match``, ``Thresholds`` and ``Matcher``. ``Matcher.from_knowledge`` builds the
index once (``intents.catalog.Catalog``); ``Matcher.match`` is pure CPU work on that
index and never touches files. Must not import bot/ or scheduler/; from knowledge/ only
the KnowledgeBase type.

How a message is scored
1. ``normalize`` + diacritic and kana folding (``intents.catalog.match_key``).
2. The language: forced by the caller, else ``detect_language``.
3. Two signals against every entry (sample question or official term):
   - rapidfuzz with a scorer per script. Latin text is word-based: the mean of
     ``token_sort_ratio`` (order-free, penalises extra words) and ``token_set_ratio``
     (generous to fragments). CJK text has no spaces: ``fuzz.ratio`` on the characters
     with spaces removed. Processors are applied explicitly beforehand (RapidFuzz 3 does
     no preprocessing by default), so ``processor=None`` is deliberate.
   - cosine similarity of character n-gram TF-IDF vectors (catches partial words and
     misspellings that reorder the string).
   The entry score is a weighted mean, multiplied by a small penalty when the entry's
   language is not the message's language (residents mix languages, so all are kept).
4. An intent's score is its best entry's; ``confidence`` is the top intent's score.
5. The decision uses the calibrated thresholds in ``intents/thresholds.yaml``
   (``kurashi kb calibrate`` reproduces them).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import yaml
from rapidfuzz import fuzz, process

from intents.catalog import TERM_LANG, Catalog, cjk_view, match_key, ngram_features
from intents.langdetect import detect_language
from intents.normalize import DIGIT, LATIN, is_cjk_text, script_profile

if TYPE_CHECKING:  # pragma: no cover
    from knowledge.loader import KnowledgeBase

THRESHOLDS_FILE = Path(__file__).resolve().parent / "thresholds.yaml"
Decision = Literal["answer", "clarify", "decline"]


@dataclass(frozen=True)
class Match:
    text: str
    intent: str | None
    decision: Decision
    confidence: float
    language: str
    suggestions: list[str]
    #: How sure the language detection was (1.0 when the caller forced the language).
    language_confidence: float = 1.0

    def as_json(self) -> dict:
        """The ``kurashi classify`` line: the contract's six keys."""
        return {"text": self.text, "intent": self.intent, "decision": self.decision,
                "confidence": round(self.confidence, 4), "language": self.language,
                "suggestions": list(self.suggestions)}


@dataclass(frozen=True)
class Thresholds:
    """Decision thresholds (calibrated) and scoring weights (hand-set, documented)."""

    #: top intent score needed to answer straight away…
    answer: float = 0.62
    #: …and its lead over the runner-up intent.
    margin: float = 0.06
    #: below this the message is out of scope: decline.
    clarify: float = 0.42
    #: an urgent intent (emergency) on top with at least this score is answered, never clarified.
    urgent: float = 0.5
    #: share of the message's character n-grams the index must know (gibberish guard).
    min_known: float = 0.3
    #: weight of the TF-IDF cosine in an entry's score (the rest is rapidfuzz).
    w_tfidf: float = 0.5
    #: entry score multiplier when the entry's language differs from the message's.
    other_language: float = 0.9
    #: how many suggestions a clarify offers.
    suggestions: int = 3
    #: provenance written by calibrate (not used for matching).
    source: dict = field(default_factory=dict, compare=False)

    @classmethod
    def load(cls, path: Path | str | None = None) -> "Thresholds":
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


class Matcher:
    """Matches messages against an index built once from the knowledge base."""

    def __init__(self, catalog: Catalog, thresholds: Thresholds | None = None):
        self.catalog = catalog
        self.thresholds = thresholds or Thresholds.load()
        entries = catalog.entries
        # Segment starts for a per-intent max with np.maximum.reduceat (entries are grouped by intent).
        order = np.argsort(catalog.entry_intent, kind="stable")
        self._order = order
        self._sorted_intent = catalog.entry_intent[order]
        self._starts = np.flatnonzero(np.r_[True, self._sorted_intent[1:] != self._sorted_intent[:-1]])
        self._seg_intent = self._sorted_intent[self._starts]
        self._is_term = np.asarray([e.is_term for e in entries], dtype=bool)
        self._lang_codes = {lang: i for i, lang in enumerate(catalog.langs)}
        self._latin_idx = np.flatnonzero([not e.cjk for e in entries])
        self._cjk_idx = np.flatnonzero([e.cjk for e in entries])
        self._latin_choices = [entries[i].key for i in self._latin_idx]
        self._cjk_choices = [cjk_view(entries[i].key) for i in self._cjk_idx]

    @classmethod
    def from_knowledge(cls, kb: "KnowledgeBase", thresholds: Thresholds | None = None) -> "Matcher":
        return cls(Catalog.build(kb), thresholds)

    # ---- scoring --------------------------------------------------------------------
    def score(self, text: str, lang: str | None = None, exclude: int | None = None) -> Scored:
        """Per-intent scores of ``text``; ``exclude`` hides one entry (leave-one-out calibration)."""
        cat = self.catalog
        th = self.thresholds
        key = match_key(text)
        if lang:
            language, lang_conf = lang, 1.0
        else:
            language, lang_conf = detect_language(text)
        prof = script_profile(key)
        has_letters = any(s != DIGIT for s in prof)
        n = len(cat.entries)
        if not key or not n:
            return Scored(key, language, lang_conf, np.zeros(len(cat.intent_ids), np.float32), 0.0, has_letters)
        cos, known = cat.tfidf.query(ngram_features(key))
        rf = np.zeros(n, dtype=np.float32)
        if is_cjk_text(key):
            q = cjk_view(key)
            if len(self._cjk_idx):
                r = process.cdist([q], self._cjk_choices, scorer=fuzz.ratio, processor=None,
                                  dtype=np.float32)[0]
                rf[self._cjk_idx] = r
        elif len(self._latin_idx):
            a = process.cdist([key], self._latin_choices, scorer=fuzz.token_sort_ratio, processor=None,
                              dtype=np.float32)[0]
            b = process.cdist([key], self._latin_choices, scorer=fuzz.token_set_ratio, processor=None,
                              dtype=np.float32)[0]
            rf[self._latin_idx] = (a + b) * 0.5
        s = th.w_tfidf * cos + (1.0 - th.w_tfidf) * (rf / 100.0)
        code = self._lang_codes.get(language)
        if th.other_language != 1.0:
            same = (cat.entry_lang == code) | self._is_term if code is not None else self._is_term
            s = np.where(same, s, s * th.other_language)
        if exclude is not None:
            s[exclude] = 0.0
        intent_scores = np.zeros(len(cat.intent_ids), dtype=np.float32)
        intent_scores[self._seg_intent] = np.maximum.reduceat(s[self._order], self._starts)
        exact = None
        if exclude is None or cat.entries[exclude].key != key:
            exact = cat.exact.get(cjk_view(key) if is_cjk_text(key) else key)
        # Unsure language: take the language of the best matching entry when its script agrees.
        if not lang and lang_conf < 0.5:
            best = int(np.argmax(s))
            if s[best] > 0:
                e = cat.entries[best]
                if not e.is_term and (LATIN in prof) == (not e.cjk):
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

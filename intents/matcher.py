"""Intent matching: one message in, one decision out (answer / clarify / decline).

Owns ``Match``, ``Thresholds`` and ``Matcher``. ``Matcher.from_knowledge`` loads (or
trains and caches) the intent model once (``intents.model.IntentModel``);
``Matcher.match`` is pure CPU work on it and never touches files. Must not import bot/
or scheduler/; from knowledge/ only the KnowledgeBase type.

How a message is decided
1. ``match_key``: NFKC, casefold, punctuation and emoji stripped, diacritics and kana
   folded; a long message is read by its head and tail (``intents.model.clip``).
2. The language: forced by the caller, else ``detect_language``.
3. An exact (folded) sample of exactly one intent answers at once.
4. The crisis check (``intents.crisis``): a message naming suicide or self-harm, or one
   the model gives the crisis intent at least ``crisis`` probability, is answered with
   the crisis intent at once — it beats decline and every other intent.
5. The model's class probabilities (intents + the out-of-scope class); ``best`` is the
   most probable intent, ``second`` the runner-up.
   - decline: no letters; ``best < clarify``; or out-of-scope probability ``>= oos`` —
     except when an urgent intent has at least ``urgent_floor``: then a "Did you mean"
     with that emergency first (a resident in danger is never sent away);
   - urgent intent on top (110/119 answers): answered at once only when
     ``best >= urgent`` and ``best - second >= urgent_margin``, else clarified — an
     everyday message that shares words with an emergency is never answered as one;
   - any other intent: answered when ``best >= answer`` and ``best - second >= margin``;
   - else "Did you mean": intents whose probability is at least ``suggest_ratio`` of the
     best one's (close by probability, not by rank), flow intents (language, forget me,
     bye…) only when they are the best guess.
   The thresholds are fitted on the evaluation set's ``tune`` split by
   ``kurashi kb calibrate --write`` (``intents/calibrate.py``) into
   ``intents/thresholds.yaml``; the training samples never take part.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import yaml

from intents.catalog import match_key
from intents.crisis import CRISIS_INTENT, is_crisis
from intents.langdetect import detect_language
from intents.model import (
    OOS,
    IntentModel,
    clip,
    exact_key,
    ovr_proba,
    softmax,
    warm_up_readings,
    with_reading,
    with_romanization,
)
from intents.normalize import normalize

if TYPE_CHECKING:  # pragma: no cover
    from knowledge.loader import KnowledgeBase

_LETTER = re.compile(r"[^\s\d]")
_KANA = re.compile("[\u3040-\u30ff]")
#: A declined message an urgent intent has at least this probability for is declined with
#: the emergency numbers (``Match.urgent_hint``): the model is unsure, a resident in danger
#: still learns whom to call.
URGENT_HINT = 0.02
#: Share of a message's Latin words the model must know to answer an urgent intent at once.
URGENT_KNOWN_WORDS = 0.5
#: Messages longer than this are also read by their last sentence (``last_sentence``).
LONG_MESSAGE = 120
_SENTENCE_END = re.compile(r"(?<=[.!?。！？\n])\s*")


def last_sentence(text: str, min_letters: int = 8) -> str:
    """The last sentence of a message (with the one before when it is very short)."""
    parts = [p.strip() for p in _SENTENCE_END.split(text.strip()) if p.strip()]
    if len(parts) < 2:
        return ""
    tail = parts[-1]
    i = len(parts) - 2
    while sum(ch.isalpha() for ch in tail) < min_letters and i >= 0:
        tail = f"{parts[i]} {tail}"
        i -= 1
    return tail if len(tail) < len(text) else ""

THRESHOLDS_FILE = Path(__file__).resolve().parent / "thresholds.yaml"
Decision = Literal["answer", "clarify", "decline"]
#: Why a message was declined: nothing to read, off-topic (the out-of-scope class), or an
#: in-domain question the model is unsure of (only these go to the operators' list).
DECLINE_EMPTY, DECLINE_OUT_OF_SCOPE, DECLINE_UNSURE = "empty", "out_of_scope", "unsure"
#: Intents that start a flow of the bot or are small talk: offered in a "Did you mean"
#: only when they are the best guess (the text is about them).
FLOW_PREFIXES = ("bot.", "greeting.", "smalltalk.")


def is_flow_intent(intent_id: str) -> bool:
    return intent_id.startswith(FLOW_PREFIXES)


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
    #: For a decline: DECLINE_EMPTY, DECLINE_OUT_OF_SCOPE or DECLINE_UNSURE ("" otherwise).
    reason: str = ""
    #: For a decline: an emergency is not impossible (an urgent intent has at least
    #: ``URGENT_HINT``): the bot shows the emergency numbers with its "I can't help".
    urgent_hint: bool = False

    def as_json(self) -> dict:
        """The ``kurashi classify`` line: the contract's six keys."""
        return {"text": self.text, "intent": self.intent, "decision": self.decision,
                "confidence": round(self.confidence, 4), "language": self.language,
                "suggestions": list(self.suggestions)}


@dataclass(frozen=True)
class Thresholds:
    """Decision thresholds on the model's probabilities, calibrated into ``intents/thresholds.yaml``.

    The defaults are only used without that file (and for knowledge bases other than the
    installed one, e.g. test fixtures).
    """

    #: best intent probability needed to answer straight away…
    answer: float = 0.45
    #: …and its lead over the runner-up.
    margin: float = 0.15
    #: below this the message is declined.
    clarify: float = 0.15
    #: out-of-scope probability at which the message is declined whatever the intents say.
    oos: float = 0.5
    #: an urgent intent (110/119 answers) is answered at once only at this probability…
    urgent: float = 0.5
    #: …and this lead over the runner-up; otherwise it is clarified like any other.
    urgent_margin: float = 0.15
    #: a message an urgent intent has at least this probability for is never declined (a
    #: "Did you mean" with the emergency first instead): a resident in danger is not sent away.
    urgent_floor: float = 0.15
    #: crisis-intent probability at which the crisis answer is given (the phrase check aside).
    crisis: float = 0.3
    #: a suggestion's probability must be at least this share of the best one's.
    suggest_ratio: float = 0.2
    #: how many suggestions a clarify offers at most.
    suggestions: int = 3
    #: probabilities are softmax(model scores × sharpness): temperature scaling fitted on
    #: the tune split (0: the model's own one-vs-rest probabilities).
    sharpness: float = 0.0
    #: provenance written by calibrate (not used for matching).
    source: dict = field(default_factory=dict, compare=False)

    @classmethod
    def load(cls, path: Path | str | None = None) -> Thresholds:
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
    """What the model says about one message, before the decision (calibrate and evaluate use it)."""

    key: str
    language: str
    language_confidence: float
    proba: np.ndarray            # per model class (intents + OOS)
    has_letters: bool
    exact: str | None = None
    crisis_phrase: bool = False
    z: np.ndarray | None = None  # the model's raw per-class scores
    known: float = 1.0           # share of the message's Latin words the model knows
    #: False when a spelling correction made an urgent intent the best guess (the message as
    #: typed says otherwise): such a guess is asked back, never answered with 110/119.
    urgent_as_typed: bool = True


class Matcher:
    """Decides messages with a trained ``IntentModel``."""

    def __init__(self, model: IntentModel | None, urgent: set[str] | frozenset[str],
                 thresholds: Thresholds | None = None):
        self.model = model
        self.urgent = frozenset(urgent)
        self.thresholds = thresholds or Thresholds.load()
        classes = model.classes if model is not None else []
        self.intent_ids = [c for c in classes if c != OOS]
        self._intent_cols = np.asarray([i for i, c in enumerate(classes) if c != OOS], dtype=np.int64)
        self._oos_col = model.oos_index if model is not None else -1
        self._flow = np.asarray([is_flow_intent(i) for i in self.intent_ids], dtype=bool)
        self._urgent_mask = np.asarray([i in self.urgent for i in self.intent_ids], dtype=bool)
        self._crisis = self.intent_ids.index(CRISIS_INTENT) if CRISIS_INTENT in self.intent_ids else -1

    @classmethod
    def from_knowledge(cls, kb: KnowledgeBase, thresholds: Thresholds | None = None,
                       cache_dir: Path | str | None = None) -> Matcher:
        """The matcher of a knowledge base: the cached model when the knowledge is unchanged."""
        urgent = {i for i, x in kb.intents.items() if x.urgent}
        if not kb.intents:
            return cls(None, urgent, thresholds)
        warm_up_readings()
        return cls(IntentModel.load_or_train(kb, cache_dir), urgent, thresholds)

    @property
    def startup_seconds(self) -> float:
        return float(getattr(self.model, "load_seconds", 0.0))

    # ---- scoring --------------------------------------------------------------------
    def score(self, text: str, lang: str | None = None, *, spell: bool = True) -> Scored:
        text = clip(text or "")
        key = match_key(text)
        if lang:
            language, lang_conf = lang, 1.0
        else:
            language, lang_conf = detect_language(text)
        has_letters = _LETTER.search(key) is not None
        n = len(self.model.classes) if self.model is not None else 0
        if not key or self.model is None:
            return Scored(key, language, lang_conf, np.zeros(n, np.float32), has_letters)
        japanese = language == "ja" or (not lang and _KANA.search(key) is not None)
        spelled = self.model.spell(key) if spell else key
        query = with_reading(spelled) if japanese else with_romanization(spelled)
        z = self.model.decision(query)
        proba = self.probabilities(z)
        tail = last_sentence(text) if len(text) > LONG_MESSAGE else ""
        if tail and proba[self._intent_cols].max(initial=0.0) < self.thresholds.answer:
            # A long story usually asks its question at the end: when the last sentence alone
            # is clearer about an intent than the whole message, it decides.
            tkey = match_key(tail)
            tq = self.model.spell(tkey) if spell else tkey
            tz = self.model.decision(with_reading(tq) if japanese else with_romanization(tq))
            tp = self.probabilities(tz)
            if tp[self._intent_cols].max(initial=0.0) > proba[self._intent_cols].max(initial=0.0):
                z, proba = tz, tp
        crisis = is_crisis(key, normalize(text))
        scored = Scored(key, language, lang_conf, proba, has_letters, self.model.exact.get(exact_key(key)), crisis, z,
                        self.model.known_share(spelled))
        if spelled != key and len(proba):
            best = int(np.argmax(proba[self._intent_cols]))
            if self._urgent_mask[best]:
                plain = self.model.decision(with_reading(key) if japanese else with_romanization(key))
                scored.urgent_as_typed = int(np.argmax(plain[self._intent_cols])) == best
        return scored

    def probabilities(self, z: np.ndarray, sharpness: float | None = None) -> np.ndarray:
        """Class probabilities from the model's scores (see ``Thresholds.sharpness``)."""
        k = self.thresholds.sharpness if sharpness is None else sharpness
        return softmax(z, k) if k else ovr_proba(z)

    def intent_proba(self, scored: Scored) -> np.ndarray:
        """Probabilities of the intents only (``intent_ids`` order)."""
        if not len(scored.proba):
            return np.zeros(0, np.float32)
        return scored.proba[self._intent_cols]

    # ---- decision -------------------------------------------------------------------
    def decide(self, scored: Scored, text: str, th: Thresholds | None = None) -> Match:
        th = th or self.thresholds
        lang, lconf = scored.language, scored.language_confidence

        def decline(reason: str, conf: float = 0.0) -> Match:
            return Match(text, None, "decline", conf, lang, [], lconf, reason)

        if not scored.key or not scored.has_letters or not len(scored.proba):
            return decline(DECLINE_EMPTY)
        p = self.intent_proba(scored)
        if self._crisis >= 0 and (scored.crisis_phrase or p[self._crisis] >= th.crisis):
            return Match(text, CRISIS_INTENT, "answer", max(float(p[self._crisis]), 0.5 if scored.crisis_phrase
                                                                  else 0.0), lang, [], lconf)
        if scored.exact is not None:
            return Match(text, scored.exact, "answer", 1.0, lang, [], lconf)
        order = np.argsort(-p, kind="stable")
        b = int(order[0])
        best = float(p[b])
        second = float(p[order[1]]) if len(order) > 1 else 0.0
        p_oos = float(scored.proba[self._oos_col]) if self._oos_col >= 0 else 0.0
        best_id = self.intent_ids[b]
        urgent_top = bool(self._urgent_mask[b])
        if p_oos >= th.oos or best < th.clarify:
            # Never "I can't help" when an emergency is a real possibility: ask back with it first.
            u = self._urgent_best(p)
            if u >= 0 and p[u] >= th.urgent_floor:
                rest = [i for i in order.tolist() if i != u]
                return Match(text, self.intent_ids[u], "clarify", float(p[u]), lang,
                             self._suggest(p, np.asarray([u, *rest]), th, floor=float(p[u])), lconf)
            hint = u >= 0 and p[u] >= URGENT_HINT
            # Off-topic when the out-of-scope class outweighs every intent; else an in-domain
            # question the model is unsure of (worth showing to the operators).
            reason = DECLINE_OUT_OF_SCOPE if p_oos >= th.oos or p_oos >= best else DECLINE_UNSURE
            return Match(text, None, "decline", best, lang, [], lconf, reason, bool(hint))
        if urgent_top:
            # A 110/119 answer at once needs the model to know most of the words: a message
            # of unknown words that only looks like an emergency ("flamengo" ~ "flames") is asked back.
            if (best >= th.urgent and best - second >= th.urgent_margin and scored.known >= URGENT_KNOWN_WORDS
                    and scored.urgent_as_typed):
                return Match(text, best_id, "answer", best, lang, [], lconf)
        elif best >= th.answer and best - second >= th.margin:
            return Match(text, best_id, "answer", best, lang, [], lconf)
        return Match(text, best_id, "clarify", best, lang, self._suggest(p, order, th), lconf)

    def _urgent_best(self, p: np.ndarray) -> int:
        """The most probable urgent intent (-1 when the knowledge base has none)."""
        if not self._urgent_mask.any():
            return -1
        masked = np.where(self._urgent_mask, p, -1.0)
        return int(np.argmax(masked))

    def _suggest(self, p: np.ndarray, order: np.ndarray, th: Thresholds, floor: float | None = None) -> list[str]:
        best = float(p[order[0]]) if floor is None else floor
        out: list[str] = []
        for rank, i in enumerate(order[: th.suggestions + 8].tolist()):
            if len(out) >= th.suggestions:
                break
            if rank and (float(p[i]) < th.suggest_ratio * best or self._flow[i]):
                continue
            out.append(self.intent_ids[i])
        return out

    def match(self, text: str, lang: str | None = None) -> Match:
        """Decide what ``text`` asks; ``lang`` forces the language instead of detecting it."""
        return self.decide(self.score(text or "", lang), text or "")

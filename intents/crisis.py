"""A dedicated check for messages about suicide or self-harm, in the ten languages.

Owns ``is_crisis(key)``: True when a folded message (``intents.catalog.match_key``)
contains one of the phrases below. The matcher answers such a message with the crisis
intent (``CRISIS_INTENT``) at once, whatever the model's confidence: a resident in
distress must never be met with "I don't know" or a "Did you mean". The trained model
still learns the crisis intent from its samples; this list is the safety net for recall
and is kept to unambiguous phrases ("I want to die", "kill myself", "死にたい") so that
everyday words ("my phone died", "chán quá" — I'm bored) do not trip it.

Phrases are written already folded: lower case, Latin diacritics removed, katakana as
hiragana. Must not import bot/, knowledge/ or scheduler/.
"""
from __future__ import annotations

import re

CRISIS_INTENT = "emergency.crisis"

_PHRASES: dict[str, list[str]] = {
    "en": [r"\bkill(ing)? my ?self\b", r"\bsuicid", r"\bwant to die\b", r"\bwanna die\b", r"\bend my life\b",
           r"\bhurt(ing)? my ?self\b", r"\bcut(ting)? my ?self\b", r"\bdont want to (live|be alive)\b",
           r"\bno reason to live\b", r"\btake my (own )?life\b", r"\bbetter off dead\b",
           r"\btired of (living|life)\b", r"\bno point (in )?living\b"],
    "ja": ["死にたい", "しにたい", "自殺", "じさつ", "消えたい", "きえたい", "生きていたくない", "いきていたくない",
           "死のうと", "しのうと", "生きるのに疲れ", "いきるのにつかれ", "生きる意味がない", "いきるいみがない", "自分を傷つけ", "リストカット", "りすとかっと", "命を絶", "生きるのが辛", "生きるのがつら",
           r"\bshinitai\b", r"\bjisatsu\b"],
    "vi": [r"(^|\b(toi|tui|em|minh|con|tao|anh|chi)( that| rat| chi| thuc su| cung)? )muon chet\b", r"\b(muon|dinh|se|nghi den|nghi toi|chuyen) tu (tu|sat)\b", r"\bkhong muon song\b",
           r"\bket thuc cuoc doi\b", r"\bchet cho xong\b", r"\btu lam hai ban than\b", r"\brach tay\b",
           r"\bchang muon song\b", r"\bchan song\b", r"\bmet moi voi cuoc song\b"],
    "zh": ["想死", "自杀", "自殺", "不想活", "轻生", "结束自己的生命", "结束生命", "活不下去", "割腕", "伤害自己", "活着没意思", "活着没有意义", "活够了"],
    "ko": ["죽고 ?싶", "자살", "살기 ?싫", "살고 ?싶지 ?않", "자해", "목숨을 끊", "극단적 ?선택", "사는 게 지쳤", "살 이유가 없"],
    "id": [r"\bbunuh diri\b", r"\bingin mati\b", r"\bmau mati\b", r"\bpengen mati\b", r"\bgak mau hidup\b",
           r"\btidak ingin hidup\b", r"\bmengakhiri hidup\b", r"\bmelukai diri\b", r"\blelah hidup\b", r"\bcapek hidup\b"],
    "tl": [r"\bmagpakamatay\b", r"\bpagpapakamatay\b", r"\bgusto ko (na )?(nang )?mamatay\b",
           r"\bayoko (na )?(nang )?mabuhay\b", r"\bsaktan ang sarili\b", r"\bwakasan ang buhay\b", r"\bpagod na (ako )?sa buhay\b", r"\bayoko na sa buhay\b"],
    "ne": ["आत्महत्या", "मर्न मन", "मर्न चाहन्छु", "बाँच्न मन छैन", "आफैलाई मार", "आफूलाई मार", "बाँच्न मन लाग्दैन", "जिउन मन छैन"],
    "my": ["သေချင်", "မိမိကိုယ်ကို သတ်", "ကိုယ့်ကိုယ်ကို သတ်", "ကိုယ့်ကိုယ်ကိုသတ်", "အသက်မရှင်ချင်", "မနေချင်တော့"],
    "pt": [r"\bsuicid", r"\bme matar\b", r"\bquero morrer\b", r"\bnao quero (mais )?viver\b",
           r"\btirar (a )?minha (propria )?vida\b", r"\bme machucar\b", r"\bacabar com (a )?minha vida\b", r"\bcansad[oa] de viver\b"],
}

#: Checked on the text with its diacritics (``normalize``): Vietnamese "tự tử" folds to
#: "tu tu", which is also "từ từ" (slowly).
_MARKED = [r"\btự tử\b", r"\btự sát\b"]

_PATTERN = re.compile("|".join(f"(?:{p})" for phrases in _PHRASES.values() for p in phrases))
_MARKED_PATTERN = re.compile("|".join(f"(?:{p})" for p in _MARKED))


def is_crisis(key: str, plain: str = "") -> bool:
    """True when the message names suicide or self-harm (see module doc): ``key`` is the
    folded form (``match_key``), ``plain`` the normalised one with diacritics (``normalize``)."""
    if key and _PATTERN.search(key) is not None:
        return True
    return bool(plain) and _MARKED_PATTERN.search(plain) is not None


def phrases() -> dict[str, list[str]]:
    """The phrase patterns per language (for tests and documentation)."""
    return {lang: list(p) for lang, p in _PHRASES.items()}

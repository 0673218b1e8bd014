"""Language detection for short chat messages (a few words), without heavy ML.

Owns ``detect_language(text) -> (lang, confidence)``. Script decides first: Hangul → ko,
kana → ja, Han only → zh (ja when it uses Japanese-only kanji forms such as 届 険 転),
Devanagari → ne, Myanmar → my. Latin text is told apart between vi (with or without
diacritics), en, id, tl, pt and romaji Japanese by small hand-written word lists,
letters only one language uses, and the shape of syllables (Vietnamese and romaji
syllables are very regular). Must not import bot/, knowledge/ or scheduler/.

When there is no evidence at all (emoji, digits, an unknown script) the result is
``("en", 0.0)``: English is the fallback language and a confidence of 0 tells callers
not to switch the user's language on it.
"""
from __future__ import annotations

import re
from functools import lru_cache

from intents.normalize import (
    DEVANAGARI,
    HAN,
    HANGUL,
    KANA,
    LATIN,
    MYANMAR,
    fold_diacritics,
    normalize,
    script_profile,
)

FALLBACK = "en"

# Kanji forms Japanese uses where Simplified Chinese writes something else, and the reverse.
_JA_ONLY_HAN = set(
    "険転証済県駅鉄円図払様帰込働銀売読説変経関権気発対総単続労齢収歳価検営応桜沢浜塩絵薬楽"
    "歯広仏仮伝児剤巻団囲圧壊寝専帯庁廃悪戦毎決満焼窓竜糸継緑縄聴脳蔵衛覚観訳豊賛辺遅録隠"
    "隣雑霊顔騒験髪闘鶏黒黙資険話語時書車東個電網園護診療費銭預貯紙類缶災"
)
_ZH_ONLY_HAN = set(
    "这们么说话语吗呢吧该还没过时对为问题办请让会儿从给样钱险转证县铁图帮买卖读变经关权气发"
    "总单续劳际龄价检营应每决满烧碎稳窗龙纯丝红绍继绿绳纵听脑脏艺卫觉观译丰赞赠边迟录镇隐邻"
    "杂灵颜驾骚验鸡黑默垃圾扔哪怎几啊个谁书车东丢码护照签预约疗费务开银账户汇邮电网络园诊"
    "类罐资儿灾"
)
_JA_ONLY_HAN -= _ZH_ONLY_HAN

# Latin word lists, already diacritic-folded. Weight 1.0 = typical of that language only;
# shared words (no, o, di, ka, ...) appear in several lists with lower weights.
_WORDS: dict[str, dict[str, float]] = {
    "vi": dict.fromkeys(["toi", "tui", "ban", "khong", "ko", "k", "cua", "la", "gi", "dau", "nhu", "the", "nao", "lam", "sao", "duoc", "dc", "can", "muon", "hoi", "xin", "chao", "cam", "co", "rac", "nha", "viec", "tien", "bao", "hiem", "ngay", "gio", "may", "bi", "cho", "voi", "va", "nay", "thi", "tu", "den", "ve", "mot", "cac", "nhung", "phai", "nguoi", "xe", "dap", "benh", "vien", "cap", "cuu", "dong", "dat", "lut", "thong", "tin", "ho", "tro", "dang", "ky", "chuyen", "nop", "thue", "luong", "huu", "con", "hoc", "truong", "tieng", "nhat", "viet", "ngan", "hang", "gui", "nuoc", "cong", "ty", "thuc", "tap", "sinh", "the", "so", "ca", "nhan", "phieu", "cu", "tru", "loai", "phan", "thu", "gom", "lich", "lon", "kien", "tu", "lanh", "dieu", "hoa", "ti", "vi", "tivi", "anh", "chi", "em", "oi", "a", "nhe", "vay", "chu", "roi", "sau", "truoc", "trong", "ngoai", "khi", "neu", "cung", "van", "da", "dang", "se", "muon", "biet", "o", "dau", "bo", "ba", "me", "kham", "chua", "thuoc", "dau", "om", "sot", "chay", "tro", "mat", "trom", "canh", "sat", "quay", "roi", "luat", "su", "ung", "ho", "tro", "giup", "dia", "chi", "giay", "to", "ho", "chieu", "visa", "gia", "han", "doi", "het", "han", "song", "lam", "thu", "tuc", "thong", "bao", "tam", "dung", "dinh", "kem", "ngu", "dich", "phien", "thong", "phong", "chong", "thien", "tai", "so", "tan", "lanh", "nan", "bao", "dong", "ket", "chuc", "mung"], 1.0),
    "en": dict.fromkeys(["the", "a", "an", "is", "are", "am", "i", "my", "me", "you", "your", "how", "what", "where", "when", "why", "which", "who", "can", "could", "do", "does", "to", "for", "of", "in", "on", "with", "at", "it", "this", "that", "there", "please", "help", "want", "need", "get", "have", "has", "about", "garbage", "trash", "rubbish", "waste", "hello", "hi", "hey", "thanks", "thank", "card", "insurance", "tax", "hospital", "clinic", "doctor", "sick", "ill", "police", "fire", "ambulance", "earthquake", "typhoon", "rain", "flood", "shelter", "school", "child", "work", "job", "boss", "salary", "wage", "wages", "paid", "unpaid", "apartment", "rent", "bank", "account", "money", "send", "bike", "bicycle", "japanese", "class", "lesson", "language", "change", "settings", "delete", "data", "stop", "event", "events", "city", "hall", "office", "open", "hours", "address", "phone", "number", "move", "moving", "out", "leave", "leaving", "japan", "register", "registration", "certificate", "residence", "visa", "renew", "renewal", "pension", "health", "emergency", "night", "holiday", "find", "near", "nearest", "day", "days", "collection", "sort", "sorting", "bulky", "furniture", "tv", "fridge", "and", "or", "not", "no", "yes", "ok", "okay", "good", "morning", "evening", "any", "some", "should", "must", "will", "would", "if", "from", "by", "be", "been", "was", "were", "his", "her", "our", "they", "them", "their", "menu", "list", "topics", "interpreter", "translate",
        "sing", "song", "tell", "give", "show", "go", "come", "see", "know", "think", "like", "love", "eat", "drink", "sleep", "buy", "pay", "call", "close", "live", "stay", "new", "old", "big", "small", "today", "tomorrow", "yesterday", "weather", "food", "restaurant", "joke", "movie", "game", "play", "music", "friend", "family", "wife", "husband", "son", "daughter", "baby", "kid", "kids", "house", "home", "room", "car", "train", "bus", "station", "shop", "store", "price", "cheap", "expensive", "lost", "broken", "stolen", "fix", "lonely", "bored", "happy", "sad", "tired", "hungry"], 1.0),
    "id": dict.fromkeys(["saya", "aku", "bagaimana", "gimana", "mana", "apa", "tidak", "nggak", "gak", "enggak", "yang", "dan", "ke", "untuk", "bisa", "sampah", "buang", "kapan", "hari", "rumah", "sakit", "kartu", "asuransi", "pajak", "gaji", "kerja", "tolong", "terima", "kasih", "selamat", "pagi", "siang", "malam", "halo", "gempa", "banjir", "polisi", "kebakaran", "kantor", "ada", "ini", "itu", "dengan", "mau", "ingin", "cara", "membuang", "dimana", "di", "mana", "berapa", "kenapa", "mengapa", "sudah", "belum", "harus", "boleh", "perlu", "tempat", "pindah", "alamat", "daftar", "pendaftaran", "kota", "balai", "anak", "sekolah", "bayi", "lahir", "hamil", "uang", "kirim", "rekening", "bank", "sepeda", "belajar", "bahasa", "jepang", "kelas", "acara", "bantuan", "penerjemah", "dokter", "obat", "darurat", "topan", "hujan", "pengungsian", "evakuasi", "kami", "kita", "mereka", "dia", "juga", "atau", "dari", "pada", "saat", "bagaimanakah"], 1.0),
    "tl": dict.fromkeys(["ang", "ng", "mga", "sa", "ako", "ko", "mo", "po", "paano", "saan", "ano", "kailan", "magkano", "basura", "ba", "na", "kung", "hindi", "wala", "may", "ito", "iyan", "yung", "yun", "salamat", "kumusta", "kamusta", "trabaho", "sahod", "ospital", "pera", "bahay", "tulong", "lindol", "bagyo", "pulis", "sunog", "ko", "akin", "aking", "namin", "natin", "kami", "tayo", "sila", "siya", "nila", "niya", "lang", "din", "rin", "naman", "pa", "kasi", "pwede", "puwede", "gusto", "kailangan", "dito", "diyan", "doon", "maraming", "marami", "magandang", "umaga", "gabi", "hapon", "araw", "tapon", "itapon", "paaralan", "anak", "bata", "pagbubuntis", "panganganak", "pasaporte", "bisikleta", "nihongo", "klase", "wika", "palitan", "tanong", "tulungan", "tawag", "tumawag", "amo", "sweldo", "suweldo", "sobra", "oras", "lumipat", "lipat", "tirahan", "opisina", "munisipyo"], 1.0),
    "pt": dict.fromkeys(["como", "onde", "os", "as", "do", "da", "dos", "das", "que", "nao", "para", "uma", "um", "eu", "meu", "minha", "lixo", "quando", "dia", "cartao", "seguro", "imposto", "salario", "trabalho", "obrigado", "obrigada", "ola", "bom", "boa", "ajuda", "terremoto", "policia", "fogo", "incendio", "casa", "banco", "conta", "posso", "preciso", "quero", "fazer", "tem", "tenho", "voce", "voces", "esta", "estou", "sao", "qual", "quais", "quanto", "quanta", "por", "porque", "muito", "mais", "hoje", "amanha", "noite", "tarde", "escola", "crianca", "filho", "filha", "mudanca", "mudar", "endereco", "prefeitura", "hospital", "medico", "emergencia", "ambulancia", "chuva", "tufao", "abrigo", "evacuacao", "aula", "japones", "lingua", "idioma", "mudar", "configuracao", "apagar", "dados", "eventos", "festa", "dinheiro", "enviar", "bicicleta", "gravidez", "nascimento", "interprete", "tradutor", "aluguel", "apartamento"], 1.0),
    "ja": dict.fromkeys(["gomi", "desu", "masu", "doko", "nani", "itsu", "dou", "byouin", "byoin", "shiyakusho", "kuyakusho", "zairyu", "kaado", "hoken", "nenkin", "zeikin", "jishin", "hinan", "hinanjo", "keisatsu", "kyuukyuusha", "kyukyusha", "arigatou", "arigato", "arigatoo", "konnichiwa", "konnichiha", "ohayou", "ohayo", "sumimasen", "onegaishimasu", "onegai", "shitai", "dashikata", "bunbetsu", "youbi", "yobi", "getsuyoubi", "kayoubi", "suiyoubi", "mokuyoubi", "kinyoubi", "doyoubi", "nichiyoubi", "tenshutsu", "tennyu", "tennyuu", "tenkyo", "juminhyo", "juuminhyou", "mainanba", "nihongo", "kyoushitsu", "kyoshitsu", "apaato", "ginkou", "ginko", "jitensha", "gakkou", "gakko", "hoikuen", "shussan", "soudan", "sodan", "tsuuyaku", "tsuyaku", "ibento", "matsuri", "yamaguchi", "moeru", "moenai", "sodai", "shigen", "kaji", "kega", "kyuukyuu", "kyukyu", "taifuu", "taifu", "ooame", "oame", "kasai", "yakusho", "shinsei", "tetsuzuki", "todoke", "kudasai", "oshiete", "oshiete", "shiritai", "wakaranai", "ikitai", "nan", "nanyoubi", "naniyoubi", "dasu", "dashite", "suteru", "sutetai", "desuka", "masuka", "koban", "kouban", "kenkou", "hokensho", "zeikin", "juminzei", "juuminzei", "kosodate", "hoikusho", "kodomo", "ninshin", "boshi", "techo", "hinanbasho", "keikai", "reberu", "bousai", "bosai", "hijou", "hijouyou", "mochidashi", "hanzai", "dorobo", "dorobou", "roudou", "rodo", "kyuuryou", "kyuryo", "zangyou", "zangyo", "jisshuusei", "jisshusei", "ginou", "ryuugakusei"], 1.0),
}

# Words shared by several languages: lower weights, counted for each.
_SHARED: dict[str, dict[str, float]] = {
    "no": {"ja": 0.6, "en": 0.4, "pt": 0.4},
    "wa": {"ja": 0.8},
    "ga": {"ja": 0.6},
    "wo": {"ja": 0.8},
    "ni": {"ja": 0.6},
    "de": {"ja": 0.3, "pt": 0.6},
    "ka": {"ja": 0.6},
    "to": {"ja": 0.2, "en": 0.6},
    "o": {"pt": 0.5, "vi": 0.5, "ja": 0.2},
    "a": {"en": 0.5, "pt": 0.5, "vi": 0.3},
    "e": {"pt": 0.8},
    "di": {"id": 0.8, "vi": 0.6},
    "na": {"tl": 0.5, "pt": 0.4},
    "sa": {"tl": 0.7},
    "ano": {"tl": 0.8, "ja": 0.3},
    "may": {"tl": 0.5, "vi": 0.6, "en": 0.2},
    "bao": {"vi": 0.9},
    "hospital": {"en": 0.7, "pt": 0.5},
    "ospital": {"tl": 0.9},
    "bank": {"en": 0.8, "id": 0.3},
    "banco": {"pt": 0.9},
    "ke": {"id": 0.6, "vi": 0.2},
    "mau": {"id": 0.8, "vi": 0.3},
    "cara": {"id": 0.8, "pt": 0.2},
    "con": {"vi": 0.8},
    "an": {"en": 0.6, "vi": 0.3},
    "hi": {"en": 0.8, "ja": 0.2},
    "ba": {"tl": 0.6, "vi": 0.5},
    "pa": {"tl": 0.6},
    "em": {"vi": 0.8, "pt": 0.4},
    "me": {"en": 0.6, "vi": 0.4},
    "do": {"en": 0.6, "pt": 0.6, "vi": 0.3},
    "da": {"pt": 0.7, "vi": 0.4},
    "ho": {"vi": 0.8},
    "ai": {"vi": 0.7},
    "so": {"en": 0.4, "vi": 0.6},
    "ma": {"vi": 0.5},
    "sinh": {"vi": 1.0},
}
_LEXICON: dict[str, dict[str, float]] = {}
for _lang, _words in _WORDS.items():
    for _w, _wt in _words.items():
        _LEXICON.setdefault(_w, {})[_lang] = _wt
for _w, _weights in _SHARED.items():
    _LEXICON[_w] = dict(_weights)

# Letters only one of our Latin languages writes.
_VI_LETTERS = set("ăđơưạảấầẩẫậắằẳẵặẹẻẽếềểễệỉịọỏốồổỗộớờởỡợụủứừửữựỳỵỷỹ")
_VI_AMBIGUOUS = set("àáèéìíòóùúãõâêô")        # vi and pt share these
_PT_LETTERS = set("ç")

# One Vietnamese syllable, diacritics folded.
_VI_SYLLABLE = re.compile(
    r"^(ngh|ng|nh|ph|th|tr|ch|gh|gi|kh|qu|[bcdghklmnprstvx])?"
    r"(uye|uya|uyu|ieu|oai|oay|uoi|uou|yeu|ươi|oe|oa|uy|ue|uo|ua|ui|ie|ia|ye|ai|ao|au|ay|eo|eu|iu|oi|ou|"
    r"ua|uu|ưu|[aeiouy])"
    r"(ng|nh|ch|[cmnpt]|[iouy])?$"
)
# One romaji word: (consonant(s))(y)vowel syllables, syllabic n, doubled consonants.
_ROMAJI_WORD = re.compile(
    r"^(?:(?:kk|ss|tt|pp|cch|tch)?(?:ky|gy|sh|ch|j|ny|hy|by|py|my|ry|ts|[kgsztdnhbpmyrwf])?[aiueo]|n(?![aiueoy]))+$"
)


def _han_language(text: str) -> tuple[str, float]:
    ja = sum(1 for c in text if c in _JA_ONLY_HAN)
    zh = sum(1 for c in text if c in _ZH_ONLY_HAN)
    if ja and not zh:
        return "ja", 0.7
    if zh:
        return "zh", 0.95 if not ja else 0.7
    return "zh", 0.8


def _latin_scores(raw: str) -> dict[str, float]:
    scores: dict[str, float] = {k: 0.0 for k in ("vi", "en", "id", "tl", "pt", "ja")}
    letters = set(raw)
    vi_marks = len(letters & _VI_LETTERS)
    if vi_marks:
        scores["vi"] += 3.0 + vi_marks
    if letters & _PT_LETTERS:
        scores["pt"] += 2.5
    # Accents both languages write: a Vietnamese-shaped syllable says vi, anything else pt.
    for word in raw.split():
        if set(word) & _VI_AMBIGUOUS and not set(word) & _VI_LETTERS:
            base = fold_diacritics(word)
            if word.endswith(("ão", "ões", "ção", "ães")) or "pt" in _LEXICON.get(base, {}):
                scores["pt"] += 1.0
            elif _VI_SYLLABLE.match(base):
                scores["vi"] += 1.0
            else:
                scores["pt"] += 0.6
    folded = fold_diacritics(raw)
    words = folded.split()
    vi_syll = romaji = 0
    for w in words:
        for lang, wt in _LEXICON.get(w, {}).items():
            scores[lang] += wt
        if _VI_SYLLABLE.match(w):
            vi_syll += 1
        if len(w) >= 2 and _ROMAJI_WORD.match(w):
            romaji += 1
        # Unknown words still carry shape evidence.
        if w not in _LEXICON:
            if w.endswith(("ing", "tion", "ed", "ly", "ment", "ness", "er")) and len(w) > 4:
                scores["en"] += 0.6
            elif w.startswith(("meng", "mem", "ber", "ter", "pen")) or w.endswith(("kan", "nya", "an")) and len(w) > 5:
                scores["id"] += 0.4
            elif w.endswith(("cao", "coes", "ção", "mente", "dade")):
                scores["pt"] += 0.6
            elif w.startswith(("mag", "nag", "pag", "ma", "ipa")) and len(w) > 5:
                scores["tl"] += 0.3
            elif len(w) >= 5 and _ROMAJI_WORD.match(w) and not w.endswith("e"):
                # A long word made only of kana syllables ("kowareta", "sutetai"); English
                # words that happen to parse mostly end in a silent e ("house", "phone").
                scores["ja"] += 0.5
    if words:
        n = len(words)
        # Vietnamese is monosyllabic: several words that all parse as syllables is telling.
        if n >= 2 and vi_syll == n:
            scores["vi"] += 0.8
        elif vi_syll / n < 0.5:
            scores["vi"] *= 0.6
        if romaji == n:
            scores["ja"] += 0.5 * n if scores["ja"] > 0 else 0.2
    return scores


@lru_cache(maxsize=4096)
def detect_language(text: str) -> tuple[str, float]:
    """(language code, confidence 0..1) for a short message; ("en", 0.0) when nothing tells."""
    norm = normalize(text)
    prof = script_profile(norm)
    if not prof:
        return FALLBACK, 0.0
    letters = sum(n for s, n in prof.items() if s != "digit")
    if not letters:
        return FALLBACK, 0.0
    if prof[HANGUL] and prof[HANGUL] >= prof[KANA]:
        return "ko", min(1.0, 0.6 + 0.4 * prof[HANGUL] / letters)
    if prof[KANA]:
        return "ja", min(1.0, 0.7 + 0.3 * (prof[KANA] + prof[HAN]) / letters)
    if prof[HAN] and prof[HAN] * 2 >= letters:
        han_text = "".join(c for c in norm if not c.isascii())
        return _han_language(han_text)
    if prof[DEVANAGARI] and prof[DEVANAGARI] * 2 >= letters:
        return "ne", 0.9
    if prof[MYANMAR] and prof[MYANMAR] * 2 >= letters:
        return "my", 0.9
    if not prof[LATIN]:
        return FALLBACK, 0.0
    scores = _latin_scores(norm)
    ranked = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0] != "en"))
    (best, top), (_, second) = ranked[0], ranked[1]
    if top <= 0:
        return FALLBACK, 0.1
    # Confidence grows with the margin over the runner-up and with the amount of evidence.
    margin = (top - second) / top
    evidence = min(1.0, top / 2.0)
    return best, round(max(0.05, min(1.0, 0.35 + 0.65 * margin * evidence)), 3)

"""Language detection of short messages: script first, then Latin languages apart."""
import pytest

from intents.langdetect import detect_language


@pytest.mark.parametrize("text, lang", [
    # Hangul → ko
    ("언어 변경", "ko"), ("쓰레기 버리는 요일", "ko"), ("감사합니다", "ko"),
    # kana → ja (also with kanji)
    ("ごみの わけかた", "ja"), ("ゴミ", "ja"), ("国民健康保険に入りたい", "ja"),
    # Han only → zh
    ("转出手续", "zh"), ("住民税是什么", "zh"), ("大雨", "zh"), ("找医院", "zh"),
    # Han only but Japanese-only kanji forms → ja
    ("転入届", "ja"), ("国民健康保険", "ja"),
    # Vietnamese with and without diacritics
    ("phân loại rác như thế nào", "vi"), ("phan loai rac nhu the nao", "vi"), ("lich thu gom rac", "vi"),
    ("cap cuu", "vi"), ("bi mat trom xe dap", "vi"), ("đăng ký chuyển đến", "vi"),
    # romaji Japanese
    ("gomi no hi", "ja"), ("byouin doko", "ja"), ("tennyu todoke", "ja"), ("gomi wa itsu desu ka", "ja"),
    # English
    ("how to sort garbage", "en"), ("where is the city hall", "en"), ("thank you", "en"),
    # Indonesian, Tagalog, Portuguese
    ("bagaimana cara buang sampah", "id"), ("saya mau ke rumah sakit", "id"),
    ("paano magtapon ng basura", "tl"), ("saan ang ospital", "tl"),
    ("como jogar o lixo", "pt"), ("onde fica a prefeitura", "pt"),
    # Devanagari, Myanmar
    ("फोहोर कहिले फाल्ने", "ne"), ("အမှိုက်ပစ်ရက်", "my"),
])
def test_detects(text, lang):
    got, conf = detect_language(text)
    assert got == lang, (text, got, conf)
    assert 0.0 < conf <= 1.0


@pytest.mark.parametrize("text", ["", "   ", "😀👍", "12345", "???"])
def test_no_evidence_is_english_with_zero_confidence(text):
    assert detect_language(text) == ("en", 0.0)


def test_vietnamese_accents_tell_vi_from_shared_latin_words():
    # "di" alone is Indonesian ("in"); "đi" can only be Vietnamese.
    assert detect_language("di")[0] == "id"
    assert detect_language("đi")[0] == "vi"
    _, with_marks = detect_language("máy")
    _, plain = detect_language("may")
    assert with_marks > plain


@pytest.mark.parametrize("text", ["você", "cartão de residência", "não sei"])
def test_accents_portuguese_shares_with_vietnamese_still_say_pt(text):
    assert detect_language(text)[0] == "pt"


@pytest.mark.parametrize("text", ["có", "thế nào", "mã số", "cô ấy"])
def test_accents_vietnamese_shares_with_portuguese_still_say_vi(text):
    assert detect_language(text)[0] == "vi"

"""Normalisation: width, case, punctuation/emoji, diacritic and kana folding, per script."""
from intents.normalize import fold_diacritics, fold_kana, is_cjk_text, normalize


def test_full_width_latin_and_digits_become_ascii_lowercase():
    assert normalize("ＧＯＭＩ　ｎｏ　ＨＩ　１１９") == "gomi no hi 119"


def test_half_width_katakana_becomes_full_width():
    assert normalize("ｺﾞﾐ ﾉ ﾋ") == "ゴミ ノ ヒ"


def test_punctuation_and_emoji_are_stripped_and_spaces_collapsed():
    assert normalize("  Where is   the city hall?!! 🏢👍🏽  ") == "where is the city hall"
    assert normalize("ごみの日は？😊") == "ごみの日は"
    assert normalize("👨‍👩‍👧‍👦❤️") == ""


def test_apostrophes_are_dropped_not_spaced():
    assert normalize("What’s my garbage day") == "whats my garbage day"


def test_casefold_and_hyphen():
    assert normalize("Lump-Sum WITHDRAWAL") == "lump sum withdrawal"


def test_vietnamese_diacritics_fold_including_d_stroke():
    assert fold_diacritics(normalize("Phân loại RÁC như thế nào")) == "phan loai rac nhu the nao"
    assert fold_diacritics("Đăng ký chuyển đến") == "Dang ky chuyen den"


def test_portuguese_and_other_latin_fold():
    assert fold_diacritics("cartão de residência") == "cartao de residencia"


def test_folding_keeps_japanese_dakuten_and_devanagari_signs():
    assert fold_diacritics("がぎぐげご パン") == "がぎぐげご パン"
    assert fold_diacritics("नमस्ते") == "नमस्ते"


def test_hangul_and_han_survive_normalize():
    assert normalize("쓰레기 버리는 요일!") == "쓰레기 버리는 요일"
    assert normalize("垃圾袋要用指定的吗？") == "垃圾袋要用指定的吗"


def test_kana_folding_and_cjk_detection():
    assert fold_kana("ゴミ カレンダー") == "ごみ かれんだー"
    assert is_cjk_text("ごみの日")
    assert is_cjk_text("언어 변경")
    assert not is_cjk_text("gomi no hi")

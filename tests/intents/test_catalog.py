"""The index: keys, views, n-gram features, per-language idf, centroids."""
from collections import Counter

import numpy as np

from intents.catalog import STOPWORDS, TfidfIndex, cjk_view, content_view, match_key, ngram_features


def test_match_key_folds_width_case_diacritics_and_kana():
    assert match_key("Phân Loại RÁC!") == "phan loai rac"
    assert match_key("ｺﾞﾐ カレンダー") == "ごみ かれんだー"
    assert cjk_view("쓰레기 버리는 날") == "쓰레기버리는날"


def test_function_words_weigh_less_than_content_words():
    feats = ngram_features("the hospital")
    assert "the" in STOPWORDS
    assert feats["w:the"] < feats["w:hospital"]
    assert content_view("saan ang ospital") == "ospital saan"   # "saan" (where) is content
    assert content_view("the a") == "a the"          # nothing but function words: keep them


def test_cjk_features_are_characters_and_bigrams():
    feats = ngram_features("ごみの日")
    assert feats["1:ご"] == 1 and feats["2:ごみ"] == 1 and "w:ごみの日" not in feats


def test_idf_is_per_language_group():
    # "ang" is in every Tagalog doc but Tagalog is a small share of the corpus: its idf must
    # still be low, as low as a word found everywhere in its own language.
    docs = [Counter({"w:ang": 1, f"w:t{i}": 1}) for i in range(3)] + \
           [Counter({f"w:e{i}": 1}) for i in range(19)] + [Counter({"w:rare": 1, "w:e0": 1})]
    groups = ["tl"] * 3 + ["en"] * 20
    idx = TfidfIndex(docs, groups)
    assert idx.idf["w:ang"] < idx.idf["w:rare"]
    flat = TfidfIndex(docs)
    assert flat.idf["w:ang"] > idx.idf["w:ang"]


def test_postings_dot_equals_dense_cosine():
    docs = [Counter({"a": 1, "b": 2}), Counter({"b": 1, "c": 1}), Counter({"d": 3})]
    idx = TfidfIndex(docs)
    q, _ = idx.query_vector(Counter({"b": 1, "c": 2}))
    got = idx.postings.dot(q)
    dense = np.array([sum(v.get(f, 0.0) * w for f, w in q.items()) for v in idx.vectors])
    assert np.allclose(got, dense)

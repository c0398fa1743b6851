"""Topic clustering on real HotpotQA questions with the real embedder; c-TF-IDF on planted texts."""

from __future__ import annotations

import math

import pytest

from engine.data.topics import Topics, TopicSpec, cluster_topics, ctfidf, label_records
from engine.errors import InputError
from engine.qa.schema import QARecord

N_RECORDS = 200


@pytest.fixture(scope="module")
def records(hotpot_records) -> list[QARecord]:
    return hotpot_records(N_RECORDS, "category")


FOOTBALL = [
    "The striker scored a late goal to win the football match 2-1.",
    "A football match in 1998 ended with a single goal.",
    "The keeper saved the match for the football club with a goal line block.",
]
PIANO = [
    "The composer wrote a piano sonata in 1820.",
    "Her piano sonata was praised by the composer's teacher.",
    "A sonata for piano by a young composer premiered in Vienna.",
]


def test_ctfidf_gives_each_planted_topic_its_own_terms():
    texts = {0: list(FOOTBALL), 1: list(PIANO)}
    terms = ctfidf(texts, top=3)
    assert {t for t, _ in terms[0]} == {"football", "goal", "match"}
    assert {t for t, _ in terms[1]} == {"composer", "piano", "sonata"}
    for ranked in terms.values():
        scores = [s for _, s in ranked]
        assert scores == sorted(scores, reverse=True) and all(s > 0 for s in scores)
    # Pure: the input is untouched and a second call gives the same answer.
    assert texts == {0: FOOTBALL, 1: PIANO} and ctfidf(texts, top=3) == terms


def test_ctfidf_drops_stop_words_and_numbers_and_keeps_topics_without_words():
    terms = ctfidf({0: FOOTBALL, 1: PIANO, 2: ["the of and 1998 2024"]}, top=20)
    words = {t for ranked in terms.values() for t, _ in ranked}
    assert not words & {"the", "a", "in", "for", "with", "1998", "1820", "2024"}
    assert terms[2] == [] and len(terms[0]) <= 20
    assert ctfidf({}, top=3) == {}


@pytest.mark.parametrize(
    "bad",
    [{"method": "dbscan"}, {"text": "answer"}, {"k_min": 5, "k_max": 4}, {"k_min": 1}, {"top_terms": 0}],
)
def test_bad_spec_is_an_input_error(bad):
    with pytest.raises(InputError):
        TopicSpec(**bad)


def never_embed(texts):
    pytest.fail("too few records must be refused before anything is embedded")


def test_too_few_records_is_an_input_error(records):
    with pytest.raises(InputError, match="at least 5 records"):
        cluster_topics(records[:4], never_embed, TopicSpec(k_min=4))
    with pytest.raises(InputError, match="got 0"):
        cluster_topics([], never_embed)
    with pytest.raises(InputError, match="at least 3 records"):
        cluster_topics(records[:2], never_embed, TopicSpec(k_min=2, k_max=2))


def test_label_records_sets_topic_metadata_and_keeps_ids(records):
    topics = Topics(
        labels=(0, 1, -1),
        names={0: "film · album", 1: "river · city"},
        terms={0: [("film", 0.5), ("album", 0.4)], 1: [("river", 0.5), ("city", 0.3)]},
        sizes={-1: 1, 0: 1, 1: 1},
        k=2,
        silhouette={2: 0.1},
        coords=((0.0, 0.0), (1.0, 0.0), (0.0, 1.0)),
    )
    labelled = label_records(records[:3], topics)
    assert [r.metadata["topic"] for r in labelled] == [0, 1, -1]
    assert [r.metadata["topic_label"] for r in labelled] == ["film · album", "river · city", "noise"]
    assert [r.id for r in labelled] == [r.id for r in records[:3]]
    assert "topic" not in records[0].metadata  # copies: the originals are unchanged
    with pytest.raises(InputError, match="cluster this dataset again"):
        label_records(records[:2], topics)


@pytest.mark.slow
def test_kmeans_picks_the_best_silhouette_k_in_range(records, embed):
    spec = TopicSpec(k_min=3, k_max=8, seed=0)
    topics = cluster_topics(records, embed, spec)

    assert sorted(topics.silhouette) == list(range(3, 9))
    assert spec.k_min <= topics.k <= spec.k_max
    assert topics.silhouette[topics.k] == max(topics.silhouette.values())
    assert len(topics.labels) == len(records) and set(topics.labels) == set(range(topics.k))
    assert sum(topics.sizes.values()) == len(records) and set(topics.sizes) == set(range(topics.k))
    # Topics are numbered from the largest.
    assert [topics.sizes[t] for t in range(topics.k)] == sorted(topics.sizes.values(), reverse=True)
    assert all(type(t) is int for t in [*topics.labels, *topics.names, *topics.terms, *topics.sizes])  # JSON-safe
    for t in range(topics.k):
        assert 1 <= len(topics.terms[t]) <= spec.top_terms
        assert topics.names[t] == " · ".join(term for term, _ in topics.terms[t])

    assert len(topics.coords) == len(records) and all(len(p) == 2 for p in topics.coords)
    assert len(set(topics.coords)) > len(records) // 2  # a real spread, not one point
    again = cluster_topics(records, embed, spec)
    assert again.labels == topics.labels and again.coords == topics.coords and again.names == topics.names

    labelled = label_records(records, topics)
    assert all(r.metadata["topic_label"] == topics.names[r.metadata["topic"]] for r in labelled)


@pytest.mark.slow
def test_question_only_text_and_hdbscan(records, embed):
    # Questions only: different texts embedded, so the clustering changes.
    by_question = cluster_topics(records, embed, TopicSpec(k_min=3, k_max=5, text="question"))
    assert 3 <= by_question.k <= 5

    topics = cluster_topics(records, embed, TopicSpec(method="hdbscan", min_cluster_size=5))
    assert len(topics.labels) == len(records)
    assert set(topics.labels) - {-1} == set(range(topics.k)) == set(topics.names)
    assert list(topics.silhouette) == [topics.k]
    score = topics.silhouette[topics.k]
    assert math.isnan(score) if topics.k < 2 else -1.0 <= score <= 1.0
    assert sum(topics.sizes.values()) == len(records)
    assert topics.sizes.get(-1, 0) == topics.labels.count(-1)

"""Topic clusters of QA records: embeddings clustered by KMeans or HDBSCAN, named by c-TF-IDF terms.

KMeans tries every k in a range and keeps the one with the best cosine silhouette. Each topic is
named by its top class-based TF-IDF terms (BERTopic's formula), and every record gets a 2-D
point (PCA of its embedding) for a map of the topics.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from engine.errors import InputError, check_choice
from engine.knobs import knob
from engine.qa.schema import QARecord

Embed = Callable[[list[str]], list[list[float]]]

METHODS = ("kmeans", "hdbscan")
TEXTS = ("context", "question", "question+context")
# Words every question has ("In what year did ..."): as topic names they say how a question asks, not what about.
QUESTION_WORDS = frozenset({"did", "does", "do", "year", "date", "many", "much", "named", "called"})
NOISE = -1
NOISE_LABEL = "noise"
# Words of two or more characters that are not pure numbers (years and counts make poor topic names).
TOKEN_PATTERN = r"(?u)\b(?!\d+\b)\w\w+\b"
N_INIT = 10


@dataclass(frozen=True)
class TopicSpec:
    method: str = knob("kmeans", "KMeans with k chosen by silhouette, or HDBSCAN", METHODS)
    # KMeans: the range of topic counts tried.
    k_min: int = knob(4, "the fewest topics KMeans tries", min=2, max=50, label="k from")
    k_max: int = knob(16, "the most topics KMeans tries", min=2, max=80, label="k to")
    seed: int = 0
    top_terms: int = 4  # terms in a topic's name
    # What is embedded: the first context (the question where there is none), the question, or both.
    # "context" by default: the 1,500-passage run clustered question+context by how questions ask
    # ("did · date · born · year", silhouette 0.06) more than by what they ask about.
    text: str = knob(
        "context",
        "what is embedded: the passage (what an item is about), the question, or both",
        TEXTS,
        label="Cluster on",
    )
    min_cluster_size: int = 5  # HDBSCAN: the smallest group of records that counts as a topic

    def __post_init__(self) -> None:
        check_choice(self.method, METHODS, "clustering method")
        check_choice(self.text, TEXTS, "text to cluster on")
        if not 2 <= self.k_min <= self.k_max:
            raise InputError(f"The topic range {self.k_min}..{self.k_max} is invalid: use 2 <= k_min <= k_max.")
        if self.top_terms < 1:
            raise InputError("A topic's name needs at least 1 term (top_terms >= 1).")
        if self.min_cluster_size < 2:
            raise InputError("HDBSCAN's min_cluster_size must be at least 2.")


@dataclass(frozen=True)
class Topics:
    labels: tuple[int, ...]  # per record; -1 = noise (HDBSCAN only)
    names: dict[int, str]  # topic -> its top terms joined, e.g. "film · album · band · song"
    terms: dict[int, list[tuple[str, float]]]  # topic -> (term, c-TF-IDF score), best first
    sizes: dict[int, int]  # topic (and -1 when there is noise) -> number of records
    k: int  # the number of topics (noise not counted)
    silhouette: dict[int, float]  # k -> cosine silhouette for each k tried (HDBSCAN: its one k)
    coords: tuple[tuple[float, float], ...]  # per record, a 2-D map (PCA of the embeddings)


def record_text(record: QARecord, text: str) -> str:
    """What is embedded for a record: its first context's text, its question, or both."""
    if text != "question" and record.contexts:
        first = record.contexts[0]
        context = f"{first.title}: {first.text}" if first.title else first.text
        return context if text == "context" else f"{record.question}\n{context}"
    return record.question


def cluster_topics(records: Sequence[QARecord], embed: Embed, spec: TopicSpec = TopicSpec()) -> Topics:
    """Topics of ``records``: cluster ``embed``'s vectors of their texts (see :class:`TopicSpec`)."""
    if spec.method == "kmeans":
        needed, knob = max(3, spec.k_min + 1), f"lower k_min (now {spec.k_min})"
    else:
        needed, knob = max(3, spec.min_cluster_size), f"lower min_cluster_size (now {spec.min_cluster_size})"
    if len(records) < needed:
        raise InputError(
            f"Topic clustering ({spec.method}) needs at least {needed} records; got {len(records)}. "
            f"Add records or {knob}."
        )
    texts = [record_text(r, spec.text) for r in records]
    vectors = np.asarray(embed(texts), dtype=np.float64)
    if vectors.ndim != 2 or len(vectors) != len(texts):
        raise InputError(f"The embedder returned {len(vectors)} vectors for {len(texts)} texts.")
    # Unit vectors: Euclidean distance then orders pairs as cosine does (KMeans and HDBSCAN are Euclidean).
    vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    if spec.method == "kmeans":
        raw, silhouette = kmeans_labels(vectors, spec)
    else:
        raw, silhouette = hdbscan_labels(vectors, spec)
    labels = relabel_by_size(raw)
    topic_ids = sorted(set(labels.tolist()) - {NOISE})  # plain ints: names and terms are keyed by them
    texts_per_topic = {t: [text for text, label in zip(texts, labels, strict=True) if label == t] for t in topic_ids}
    terms = ctfidf(texts_per_topic, spec.top_terms)
    names = {t: " · ".join(term for term, _ in terms[t]) or f"topic {t}" for t in topic_ids}
    sizes = {int(t): int(n) for t, n in zip(*np.unique(labels, return_counts=True), strict=True)}
    return Topics(
        labels=tuple(int(label) for label in labels),
        names=names,
        terms=terms,
        sizes=sizes,
        k=len(topic_ids),
        silhouette=silhouette,
        coords=map_coords(vectors),
    )


def kmeans_labels(vectors: np.ndarray, spec: TopicSpec) -> tuple[np.ndarray, dict[int, float]]:
    """KMeans for each k in the spec's range (capped at n - 1): the labels of the best-silhouette k."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    best_labels, best_score, scores = None, -math.inf, {}
    for k in range(spec.k_min, min(spec.k_max, len(vectors) - 1) + 1):
        labels = KMeans(n_clusters=k, n_init=N_INIT, random_state=spec.seed).fit_predict(vectors)
        # Duplicate texts can leave fewer distinct clusters than k; silhouette needs 2 or more.
        score = float(silhouette_score(vectors, labels, metric="cosine")) if len(set(labels)) > 1 else -1.0
        scores[k] = score
        if score > best_score:  # strict: on a tie the smaller k wins
            best_labels, best_score = labels, score
    return best_labels, scores


def hdbscan_labels(vectors: np.ndarray, spec: TopicSpec) -> tuple[np.ndarray, dict[int, float]]:
    """HDBSCAN's labels (-1 = noise) and the cosine silhouette of the clustered records (NaN if under 2 topics)."""
    from sklearn.cluster import HDBSCAN
    from sklearn.metrics import silhouette_score

    labels = HDBSCAN(min_cluster_size=spec.min_cluster_size, copy=True).fit_predict(vectors)
    clustered = labels != NOISE
    k = len(set(labels[clustered]))
    score = math.nan
    if 2 <= k < clustered.sum():
        score = float(silhouette_score(vectors[clustered], labels[clustered], metric="cosine"))
    return labels, {k: score}


def relabel_by_size(labels: np.ndarray) -> np.ndarray:
    """Topics renumbered 0, 1, ... from the largest (ties: first seen), so numbering does not depend on the solver."""
    topics = [t for t in dict.fromkeys(labels.tolist()) if t != NOISE]
    order = sorted(topics, key=lambda t: -int((labels == t).sum()))
    mapping = {old: new for new, old in enumerate(order)}
    return np.array([mapping.get(label, NOISE) for label in labels.tolist()], dtype=int)


def map_coords(vectors: np.ndarray) -> tuple[tuple[float, float], ...]:
    """A 2-D point per vector: the first two principal components (deterministic: full SVD, fixed signs)."""
    from sklearn.decomposition import PCA

    n_components = min(2, *vectors.shape)
    points = PCA(n_components=n_components, svd_solver="full").fit_transform(vectors)
    if n_components < 2:
        points = np.hstack([points, np.zeros((len(points), 2 - n_components))])
    return tuple((float(x), float(y)) for x, y in points)


def ctfidf(texts_per_topic: dict[int, list[str]], top: int) -> dict[int, list[tuple[str, float]]]:
    """The ``top`` class-based TF-IDF terms of each topic, best first (BERTopic's c-TF-IDF).

    A topic's texts are joined into one document; a term's weight in topic c is its frequency in c
    (normalized to sum to 1 over c's terms) times log(1 + A / f), where A is the average number of
    words per topic and f the term's frequency over all topics. English stop words, the words of
    every question (:data:`QUESTION_WORDS`) and pure numbers are left out.
    """
    from sklearn.feature_extraction.text import CountVectorizer

    topics = sorted(texts_per_topic)
    result: dict[int, list[tuple[str, float]]] = {t: [] for t in topics}
    documents = [" ".join(texts_per_topic[t]) for t in topics]
    if not documents:
        return result
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    stop_words = sorted(ENGLISH_STOP_WORDS | QUESTION_WORDS)
    vectorizer = CountVectorizer(stop_words=stop_words, token_pattern=TOKEN_PATTERN)
    try:
        counts = vectorizer.fit_transform(documents).toarray().astype(np.float64)
    except ValueError:  # no word left (empty texts, or only stop words and numbers)
        return result
    vocabulary = vectorizer.get_feature_names_out()
    words_per_topic = counts.sum(axis=1, keepdims=True)
    tf = counts / np.maximum(words_per_topic, 1.0)
    idf = np.log(1.0 + words_per_topic.mean() / counts.sum(axis=0))
    weights = tf * idf
    for row, topic in enumerate(topics):
        present = np.flatnonzero(weights[row] > 0)
        # Best weight first; alphabetical among equals so the order never depends on the vocabulary's.
        ranked = sorted(present, key=lambda j: (-weights[row, j], vocabulary[j]))[:top]
        result[topic] = [(str(vocabulary[j]), float(weights[row, j])) for j in ranked]
    return result


def label_records(records: Sequence[QARecord], topics: Topics) -> list[QARecord]:
    """Copies of ``records`` with metadata ``topic`` (int, -1 = noise) and ``topic_label`` (its name)."""
    if len(records) != len(topics.labels):
        raise InputError(
            f"The topics were computed for {len(topics.labels)} records, not these {len(records)}: "
            "cluster this dataset again."
        )
    return [
        r.with_metadata(topic=label, topic_label=topics.names.get(label, NOISE_LABEL))
        for r, label in zip(records, topics.labels, strict=True)
    ]

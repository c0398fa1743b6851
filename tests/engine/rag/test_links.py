"""The hop along mentions: passages named in the best ones move up."""

from engine.evaluation.hotpotqa import distractor_retriever, load_hotpotqa
from engine.rag.hits import Hit
from engine.rag.links import follow_links, mentions, title_names
from engine.rag.retriever import PoolRetriever


def hit(title: str, text: str) -> Hit:
    return Hit(title, title, text, "test", 0.0)


def test_title_names_drop_a_disambiguation_suffix_and_entities():
    assert title_names("Unbreakable (film)") == {"unbreakable (film)", "unbreakable"}
    assert title_names("Texas A&amp;M Aggies") == {"texas a&m aggies"}


def test_mentions_match_whole_words_ignoring_case():
    assert mentions("It was directed by M. Night Shyamalan.", "M. Night Shyamalan")
    assert mentions("the film UNBREAKABLE was a hit", "Unbreakable (film)")
    assert not mentions("Parisians love it", "Paris")
    assert not mentions("nothing here", "Paris")


def test_follow_links_moves_named_passages_up_in_rank_order():
    ranked = [
        hit("Unbreakable (film)", "Unbreakable is a 2000 film by M. Night Shyamalan, filmed in Philadelphia."),
        hit("Split", "Split is a film."),
        hit("Glass", "Glass is a film."),
        hit("Philadelphia", "Philadelphia is a city."),
        hit("M. Night Shyamalan", "Shyamalan was born in Mahé, India."),
    ]
    top = follow_links(ranked, 3, follow=1)
    assert [h.title for h in top] == ["Unbreakable (film)", "Philadelphia", "M. Night Shyamalan"]
    assert [h.title for h in follow_links(ranked, 5, follow=1)][3:] == ["Split", "Glass"]
    assert follow_links(ranked, 3, follow=0) == ranked[:3]


def test_a_passage_is_never_given_twice_nor_linked_to_itself():
    ranked = [hit("Paris", "Paris is in France. Paris is big."), hit("Paris", "More on Paris."), hit("France", "x")]
    top = follow_links(ranked, 3, follow=1)
    # France is named by the first passage; the second Paris passage is not a link, it keeps its place after.
    assert top == [ranked[0], ranked[2], ranked[1]]


def test_links_find_more_gold_paragraphs_on_real_questions(shared_data, settings, embedder):
    items = load_hotpotqa(shared_data / "hotpotqa-dev.jsonl", 40)
    dense = PoolRetriever(embedder, {it.question: it.paragraphs for it in items})
    linked = distractor_retriever(items, settings, embedder, follow_links=2)

    def gold_found(retriever) -> int:
        hits = retriever.retrieve([it.question for it in items], 5)
        pairs = zip(items, hits, strict=True)
        return sum(len({h.title for h in found} & set(it.supporting_titles)) for it, found in pairs)

    plain, hopped = gold_found(dense), gold_found(linked)
    assert hopped > plain, (plain, hopped)
    for found in linked.retrieve([it.question for it in items], 5):
        assert len(found) == 5 and len({h.title for h in found}) == 5

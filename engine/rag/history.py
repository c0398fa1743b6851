"""Log one answered question to MLflow (experiment ``studio-query``)."""

from __future__ import annotations

from engine.machine import snapshot
from engine.rag.pipeline import RagAnswer
from engine.tracking import QUERY, Tracker


def log_query(tracker: Tracker, answer: RagAnswer, kb: str | None, model: str, k: int) -> str:
    """Question, prompt, answer, retrieved ids and scores, latencies, tokens/s, RSS and CPU."""
    res = snapshot(device="")
    params = {
        "question": answer.question,
        "kb": kb or "(closed book)",
        "model": model,
        "k": k,
        "style": answer.style,
        "answer": answer.answer,
    }
    run_id = tracker.start(QUERY, answer.question[:80], params)
    tracker.log_metrics(
        run_id,
        {
            "retrieval_s": answer.retrieve_s,
            "generation_s": answer.generate_s,
            "total_s": answer.retrieve_s + answer.generate_s,
            "tokens_per_s": answer.tokens_per_s,
            "prompt_tokens": answer.prompt_tokens,
            "new_tokens": answer.new_tokens,
            "top_score": max((h.score for h in answer.hits), default=0.0),
            "rss_mb": res.process_rss_mb,
            "cpu_percent": res.process_cpu_percent,
        },
    )
    prompt = "\n\n".join(f"[{m['role']}]\n{m['content']}" for m in answer.messages)
    tracker.log_text(run_id, prompt, "prompt.txt")
    tracker.log_dict(
        run_id,
        {
            "question": answer.question,
            "answer": answer.answer,
            "raw": answer.raw,
            "citations": list(answer.citations),
            "retrieved": [{"id": h.id, "title": h.title, "score": h.score, "source": h.source} for h in answer.hits],
        },
        "answer.json",
    )
    tracker.end(run_id)
    return run_id

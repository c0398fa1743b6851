"""Rate three items blind in headless Chromium against a real `streamlit run`, and watch the leaderboard."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from engine.ratings import RatingStore, items_from_answers

QUESTIONS = ["Who wrote Hamlet?", "What is the capital of France?", "Which is the largest planet?"]


@pytest.mark.e2e
def test_rate_three_items_and_see_the_leaderboard_change(browser, studio_server, tmp_path):
    store = RatingStore(studio_server.data_dir / "ratings.db")
    items = items_from_answers(QUESTIONS, ["Shakespeare", "Paris", "Jupiter"], None,
                               ["Shakespeare wrote it.", "Paris.", "Jupiter."], ["Marlowe.", "Lyon.", "Saturn."],
                               ("careful", "sloppy"))  # fmt: skip
    session = store.create_session("e2e: careful vs sloppy", ("careful", "sloppy"), items, seed=3)
    page = browser.new_page(viewport={"width": 1400, "height": 1200})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(f"{studio_server.url}/Human_Eval", wait_until="domcontentloaded")
        expect(page.get_by_role("heading", name="Human Eval")).to_be_visible(timeout=60_000)
        rater = page.get_by_role("textbox", name="Your name (rater)")
        rater.fill("e2e-rater")
        rater.press("Enter")
        board = page.get_by_role("tab", name="Leaderboard and agreement")
        for n in range(3):
            expect(page.get_by_text(f"{n} rated, 0 skipped of 3")).to_be_visible(timeout=30_000)
            item = store.items(session)[n]
            # the better answer is careful's: pick its side, which the page does not name
            choice = "A is better" if item.left_variant == "careful" else "B is better"
            page.get_by_role("radiogroup", name="Which answer is better?").get_by_text(choice, exact=True).click()
            page.get_by_role("button", name="Submit rating").click()
            expect(page.get_by_text("Answer A was")).to_be_visible(timeout=30_000)
            if n == 0:
                board.click()
                expect(page.get_by_text("careful: win rate")).to_be_visible(timeout=30_000)
                expect(page.get_by_text("1 wins, 0 losses")).to_be_visible()
                page.get_by_role("tab", name="Rate").click()
        expect(page.get_by_text("You have rated every item")).to_be_visible(timeout=30_000)
        board.click()
        expect(page.get_by_text("3 wins, 0 losses")).to_be_visible(timeout=30_000)  # it changed with each rating
        expect(page.get_by_test_id("stException")).to_have_count(0)
        assert len(store.ratings(session)) == 3
        assert set(store.ratings(session)["winner"]) == {"careful"}
        assert not errors, f"JavaScript errors on the page: {errors}"
    finally:
        page.screenshot(path=str(tmp_path / "human-eval.png"), full_page=True)
        page.close()

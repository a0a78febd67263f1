"""Model helpers that need no database."""

from app.models import HISTORY_LIMIT, Generation, appended_history


def entry(number):
    return {"at": f"2026-11-24T00:00:{number:02d}+00:00", "status": "failed", "error": f"attempt {number}"}


def test_appended_history_adds_the_entry_last_without_changing_the_old_list():
    history = [entry(1)]
    assert appended_history(history, entry(2)) == [entry(1), entry(2)]
    assert history == [entry(1)]


def test_appended_history_keeps_only_the_last_ten_entries():
    history = []
    for number in range(25):
        history = appended_history(history, entry(number))
    assert HISTORY_LIMIT == 10
    assert history == [entry(number) for number in range(15, 25)]


def test_a_generation_says_when_its_history_reached_the_cap():
    assert not Generation(history=[entry(n) for n in range(HISTORY_LIMIT - 1)]).history_is_capped
    assert Generation(history=[entry(n) for n in range(HISTORY_LIMIT)]).history_is_capped


def test_a_generation_from_before_the_cap_shows_only_its_last_ten_attempts():
    generation = Generation(history=[entry(n) for n in range(15)])
    assert generation.shown_history == [entry(n) for n in range(5, 15)]

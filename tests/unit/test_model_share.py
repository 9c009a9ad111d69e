"""Who decided: the model's calls and answers, and each applied decision's source, as every table shows them."""

from __future__ import annotations

from rudder_agent.records.model_share import ModelShare


def test_an_async_run_where_the_model_never_answered_in_time_says_so() -> None:
    """The demo's `paper` run on 2 busy cores: 276 requests, 2 calls left pending, every decision the guard's."""
    share = ModelShare.of(276, {"replace": 0, "skip": 0, "invalid": 0, "guarded": 63}, {"asked": 2, "busy": 207},
                          ["guard"] * 61)
    assert (share.asked, share.answered, share.valid) == (2, 0, 0)
    assert share.asked_answered() == "2/0" and share.decided_by() == "0/61/0/0/0/0"
    assert share.sentence() == "the model: asked on 2 of 276 requests, answered 0 (0 valid); decided by: guard 61"


def test_a_sync_run_counts_every_answer_as_a_call() -> None:
    """Synchronously nothing is left unanswered: the calls are the answers, an invalid one decided by the fallback."""
    share = ModelShare.of(10, {"replace": 6, "skip": 2, "invalid": 2}, {}, ["model"] * 8 + ["fallback"] * 2)
    assert (share.asked, share.answered, share.valid) == (10, 10, 8)
    assert share.decided == {"model": 8, "guard": 0, "no-difference": 0, "idle": 0, "fallback": 2, "rule": 0}


def test_late_answers_are_counted_once_and_idle_re_ranking_is_nobodys_decision() -> None:
    share = ModelShare.of(40, {"replace": 3, "skip": 1}, {"asked": 5, "busy": 30}, ["model"] * 4 + ["idle"] * 30)
    assert share.asked_answered() == "5/4" and share.decided_by() == "4/0/0/30/0/0"

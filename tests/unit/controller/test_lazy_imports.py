"""The operator with its history off never loads the history stack (SQLAlchemy: ~11 MB of
the operator's resident memory, measured against Argo's controller in make bench-peers)."""

from __future__ import annotations

import pytest

from shipway.controller.historyconfig import HISTORY_OFF, history_settings
from shipway.history.store import store_url
from tests.unit.standin import run_fresh_python


@pytest.mark.parametrize("value", [*HISTORY_OFF, " OFF ", "None"])
def test_every_off_spelling_turns_the_history_off_as_the_store_reads_it(value: str) -> None:
    assert store_url(value) is None
    assert history_settings({"SHIPWAY_HISTORY": value}, ValueError).url is None


def test_an_operator_with_its_history_off_does_not_import_sqlalchemy() -> None:
    code = (
        "import sys\n"
        "import shipway.controller.handlers\n"
        "from shipway.controller.config import OperatorConfig\n"
        "OperatorConfig.from_env({'SHIPWAY_HISTORY': 'off'})\n"
        "print('sqlalchemy' in sys.modules)\n"
    )
    assert run_fresh_python(code).strip() == "False"


def test_an_operator_with_a_history_url_still_reads_it() -> None:
    assert (
        history_settings({"SHIPWAY_HISTORY": "sqlite:///x.db"}, ValueError).url == "sqlite:///x.db"
    )

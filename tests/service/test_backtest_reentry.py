"""The backtest with reentry-matrix-svc's stage: every closed trade is decided, approved re-entries go
back in as signals, and the chain rules hold on the replayed trades (checked from the trades
themselves, not from the engine's bookkeeping)."""

from __future__ import annotations

import asyncio

import pytest

from eafix import cli
from eafix.backtest.data import load, write_sample
from eafix.backtest.runner import run
from eafix.reentry_matrix_svc.matrix import load_matrix
from eafix.signal_generator.config import load_default_strategies


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    return write_sample(tmp_path_factory.mktemp("bt") / "EURUSD_H1.csv", seed=7, bars=3000)


@pytest.fixture(scope="module")
def result(sample):
    return asyncio.run(run(load(sample), load_default_strategies(), reentry=load_matrix()))


def test_every_closed_trade_gets_one_decision(result):
    assert sorted(d.trade_id for d in result.reentry_decisions) == sorted(t.trade_id for t in result.trades)


def test_chains_reenter_and_stop_after_r2(result):
    by_trade = {d.trade_id: d for d in result.reentry_decisions}
    generations = {d.generation for d in result.reentry_decisions}
    assert {"O", "R1"} <= generations, "the shipped matrix re-enters on this sample"
    for d in result.reentry_decisions:
        if d.generation == "R2":
            assert not d.approved and d.refusal == "CHAIN_COMPLETE"
        if d.generation != "O":  # a re-entry's original is an O trade of the same symbol
            original = by_trade[d.original_trade_id]
            assert original.generation == "O" and original.symbol == d.symbol
    chains = result.chains()
    assert chains["R1"] == sum(1 for d in result.reentry_decisions if d.approved and d.generation == "O")


def test_a_chain_never_trades_more_lots_than_its_original(result):
    lots = {t.trade_id: t.lots for t in result.trades}
    reentered = [d for d in result.reentry_decisions if d.generation != "O"]
    assert reentered
    for d in reentered:
        assert lots[d.trade_id] <= lots[d.original_trade_id], d


def test_without_a_matrix_the_replay_is_the_five_services(sample):
    plain = asyncio.run(run(load(sample), load_default_strategies()))
    assert plain.reentry_decisions == () and plain.chains() == {"R1": 0, "R2": 0}


def test_cli_reports_the_chains_and_names_a_bad_matrix(sample, tmp_path, capsys):
    assert cli.main(["backtest", "--data", str(sample), "--out", str(tmp_path / "out"), "--reentry"]) == 0
    out = capsys.readouterr().out
    assert "re-entry decisions" in out and "matrix 1.0.0" in out
    bad = tmp_path / "m.yaml"
    bad.write_text("version: 2\n")
    assert cli.main(["backtest", "--data", str(sample), "--reentry-matrix", str(bad)]) == 2
    assert str(bad) in capsys.readouterr().err


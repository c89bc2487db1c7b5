"""The search's states as ints of per-position places (interpreter/explore/packed.py): a key
reads back as the state it was made of, two states have one key exactly when they are equal,
and a position that outgrows its byte starts the search again wider, with the same result."""
import pytest
from hypothesis import HealthCheck, given, settings

from mmscn.dsl.resolve import load
from mmscn.interpreter import explore as X
from mmscn.interpreter import policies
from mmscn.interpreter.explore import packed as P
from mmscn.interpreter.explore.memo import Memo

from test_explore_commute import programs
from test_explore_memo import DENSE, search


def model_of(text: str):
    sc = load(text, "t.mmscn", policies.KnownArches())
    return X.Model(sc, text.split("\n"))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
@given(programs())
def test_a_key_reads_back_as_its_state_and_only_equal_states_share_one(text):
    m = model_of(text)
    if m.prologue_failure is not None:
        return
    r = X.Explorer(m, por=False, symmetry=False, all_finals=True, memo="off").run()
    memo = Memo(m, "on")
    codec = P.Positions(m, memo, P.Positions.first_widths(m, memo))
    pcs = bytes(len(us) for us in m.units)
    keys = {}
    for s in r.finals + [m.start]:
        x = codec.encode(s, pcs)
        assert codec.state(x) == s and codec.open(x) == (s, tuple(pcs))
        assert keys.setdefault(x, s) == s
    assert len(set(keys.values())) == len(keys)


def test_a_position_past_its_byte_starts_the_search_again_wider(monkeypatch):
    # every position one byte that holds 16 places: the mm's counters make more rows than that
    starts = []
    init = P.Positions.__init__

    def narrow(self, model, memo, widths):
        starts.append(list(widths))
        init(self, model, memo, widths)
        self.masks = [15 if w == 1 else m for w, m in zip(widths, self.masks)]

    monkeypatch.setattr(P.Positions, "__init__", narrow)
    monkeypatch.setattr(P.Positions, "first_widths", staticmethod(lambda model, memo: [1] * len(model.start)))
    on, memo = search(DENSE, "on")
    assert len(starts) >= 2 and starts[0] == [1] * len(starts[0]) and max(starts[-1]) == 2, starts
    assert memo.hits > memo.misses
    monkeypatch.undo()
    assert on == search(DENSE, "off")[0]


def test_compact_fingerprints_the_keys_bytes_not_the_ints_hash():
    # an int's hash is the int modulo 2**61 - 1: places 61 bits apart would share a fingerprint
    m = model_of(DENSE)
    memo = Memo(m, "on")
    codec = P.Positions(m, memo, P.Positions.first_widths(m, memo))
    x, y = 1, 1 << 61
    assert hash(x) == hash(y) and codec.fingerprint(x) != codec.fingerprint(y)
    exact = X.Explorer(model_of(DENSE), por=False, symmetry=False).run()
    compact = X.Explorer(model_of(DENSE), por=False, symmetry=False, compact=True).run()
    assert compact.stats.distinct == exact.stats.distinct and compact.stats.transitions == exact.stats.transitions

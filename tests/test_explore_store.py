"""The explorer's fast paths say what the slow ones say: the packed visited keys (search.pack)
are one-to-one, and Model.fire's way past execute() for a statement that runs cleanly gives the
move, the failure and the kernel state that execute() gives, statement by statement."""
import random
from array import array

from hypothesis import given, settings
from hypothesis import strategies as st

from mmscn.dsl.resolve import load_file
from mmscn.interpreter import explore as X
from mmscn.interpreter import policies
from mmscn.interpreter.explore.search import pack, unpack
from mmscn.interpreter.explore.visited import Visited
from mmscn.interpreter.step import execute, search_move

from conftest import EXAMPLES

numbers = st.one_of(st.integers(0, 300), st.sampled_from([254, 255, 256, 65535, 65536, (1 << 24) - 1, 1 << 24]))


@settings(max_examples=400, deadline=None)
@given(st.lists(numbers, min_size=1, max_size=12), st.lists(numbers, min_size=1, max_size=12))
def test_packed_keys_are_one_to_one(a, b):
    a, b = tuple(a), tuple(b)
    assert unpack(pack(a)) == a
    assert (pack(a) == pack(b)) == (a == b)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(numbers, min_size=3, max_size=6), min_size=1, max_size=3000))
def test_visited_ids_are_the_order_of_arrival(states):
    """Visited.add gives each distinct key the next id and a key seen before its own, across the
    table's growth; key(i) gives the key back; compact mode does the same by fingerprint."""
    v, c, ids = Visited(), Visited(compact=True), {}
    for t in states:
        k = pack(tuple(t))
        want = ids.setdefault(k, len(ids))
        assert v.add(k) == want
        assert c.add(hash(k)) == want
    assert len(v) == len(c) == len(ids)
    for k, i in ids.items():
        assert v.key(i) == k and unpack(v.key(i)) == unpack(k)
        assert v.add(k) == i


def test_visited_tells_apart_keys_with_one_hash():
    """Two keys whose hashes collide (probing, bytes compared) keep their own ids."""
    class Same(bytes):
        def __hash__(self):
            return 7
    v = Visited()
    a, b = Same(b"\x01\x02"), Same(b"\x01\x03")
    assert (v.add(a), v.add(b), v.add(a), v.add(b)) == (0, 1, 0, 1)


def test_packed_key_with_cost_counters_round_trips():
    t = (3, 2, 0, 1, 255, 300, (4, 0, 7))
    assert unpack(pack(t)) == t
    assert pack(t) != pack(t[:-1] + ((4, 0, 8),))


def _models():
    for p in sorted(EXAMPLES.rglob("*.mmscn")):
        sc, text = load_file(p, policies.KnownArches())[:2]
        if not sc.blocks or sc.granularity == "step" or sc.interrupts:
            continue
        m = X.Model(sc, text.split("\n"))
        if m.prologue_failure is None:
            yield p, m


def test_fast_fire_is_execute():
    """Along random walks of every example with blocks, each unit fired by Model.fire and by
    execute() from the same state: the same move and failure, and the same state after."""
    rng = random.Random(13)
    fast = 0
    for p, m in _models():
        for _ in range(4):
            m.restore(m.start)
            pcs = list(m.start_pcs)
            s = m.start
            while True:
                live = [b for b in range(m.nblocks) if pcs[b] < len(m.units[b]) and not m.waiting(s, m.units[b][pcs[b]])]
                if not live:
                    break
                b = rng.choice(live)
                u = m.units[b][pcs[b]]
                m.restore(s)
                o = execute(m.k, m.policy, u.stmt, u.cpu, u.expect)
                want = search_move(o)
                after = m.capture()
                m.restore(s)
                got = m.fire(u)
                fast += u.run is not None
                assert got[0] == want[0], (p, u.stmt)
                assert (got[1] is None) == (want[1] is None), (p, u.stmt)
                if want[1] is not None:
                    assert (got[1].kind, got[1].message, got[1].line) == (want[1].kind, want[1].message,
                                                                            want[1].line), (p, u.stmt)
                    break
                assert m.capture() == after, (p, u.stmt)
                s = after
                pcs[b] = len(m.units[b]) if want[0] == X.ENDED else pcs[b] + 1
    assert fast > 100      # the fast path was taken


def test_packed_long_states_round_trip():
    """States of 255 numbers or more (many tasks) take marshal's form, below it wide()'s."""
    for n in (254, 255, 400):
        t = tuple(range(n))
        assert unpack(pack(t)) == t
        assert pack(t) != pack(t[:-1] + (n,))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(st.integers(0, 3), max_size=4), min_size=1, max_size=14), st.integers(0, 14),
       st.randoms(use_true_random=False), st.booleans())
def test_count_paths_counts_every_path(jumps, unexpanded, rnd, in_order):
    """count_paths over a random graph whose edges raise the progress (as the search's do; the ids
    in another order, but for the start's, or in the order of progress: the ids backwards), against
    paths enumerated one by one; an edge twice is two paths; states past the expanded ones count
    one."""
    from mmscn.interpreter.explore.search import count_paths
    n = len(jumps)
    out = [sorted({i + 1 + d for d in js if i + 1 + d < n}) for i, js in enumerate(jumps)]
    rest = list(range(1, n))
    if not in_order:
        rnd.shuffle(rest)
    ident = [0] + rest                      # node -> id
    node = {v: k for k, v in enumerate(ident)}
    expanded = max(1, n - unexpanded)
    progress = array("i", [3 * node[i] for i in range(n)])
    succ, succ_at = array("i"), array("i")
    for i in range(expanded):
        succ_at.append(len(succ))
        v = node[i]
        succ.extend(ident[w] for w in out[v] + out[v][:1])
    succ_at.append(len(succ))

    def paths(i):
        v = node[i]
        if i >= expanded or not out[v]:
            return 1
        return sum(paths(ident[w]) for w in out[v] + out[v][:1])
    assert count_paths(succ, succ_at, progress) == paths(0)

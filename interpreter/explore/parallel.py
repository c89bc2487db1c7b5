"""`mmscn explore --jobs N`: the breadth-first search partitioned over N worker processes.

Worker w owns the states whose key's program counter of its longest block is w modulo N
(docs/explore.md, "Every core").  The search goes level by level, and within a level in
segments that end where the one-process search (search.py) checks its
bounds (every 1,024 states expanded): each worker expands the states it owns
in the segment, sends each successor to its owner in one batch per worker,
and owners keep the successors they have not seen.  A state's id is the one
the one-process search gives it (its place in the breadth-first queue: the
states of a level in the order of (parent id, place among the parent's
successors)), so the coordinator, told per segment what each expanded state
did and which ids were new, finds where the one-process search stops (the
first failure, deadlock, broken `final forall`, --max-states) and reports
its counts, its failure and its shortest interleaving exactly.  The work a
worker did past that point is thrown away.

A captured state is a tuple of row ids into tables each process builds for
itself (model.Store), so a state crosses between processes as its rows
(``Rows.export``) and is interned again by its receiver (``Rows.import_``).
Symmetry's least image is chosen by a fingerprint that hashes the rows,
never the ids (the one-process search compares ids), so that every worker
picks the same representative: an orbit is still one state; --compact keeps
that fingerprint.  Fork is needed: the workers inherit the model, the
reductions and Python's string hash, which the fingerprint depends on.
"""
from __future__ import annotations

import math
import multiprocessing as mp
import os
import pickle
import resource
import signal
import threading
import time
import traceback
from array import array
from bisect import bisect_left
from multiprocessing.connection import wait

from .model import ENDED, FAILED, Failure
from .search import Explorer, Result, Stats, count_paths, pack, unpack
from .visited import Visited

SEGMENT = 1024          # search.py checks its bounds (and looks for symmetry) every 1,024 states
PIPE_BYTES = 60_000     # less than a Linux pipe holds (64 KiB): a send that never waits for its reader
POLL = 0.5              # seconds between a worker's checks that its coordinator still lives


class Rows:
    """A state's rows, and its fingerprint, independent of this process's row ids."""

    def __init__(self, model):
        self.store = store = model.store
        self.ncpus = model.k.ncpus
        self.head = store.HEAD
        self.hashes = tuple([] for _ in store.rows)     # per owner: row id -> hash(row)

    def _spans(self, s):
        h = self.head
        a = h + s[0]
        b = a + s[1]
        return (h, a), (a, b), (b, b + self.ncpus)

    def fingerprint(self, s, pcs) -> int:
        for hs, rows in zip(self.hashes, self.store.rows):
            if len(hs) < len(rows):
                hs.extend(map(hash, rows[len(hs):]))
        (a, b), (c, d), (e, f) = self._spans(s)
        th, mh, ch = self.hashes
        return hash((s[:a], tuple([th[x] for x in s[a:b]]), tuple([mh[x] for x in s[c:d]]),
                     tuple([ch[x] for x in s[e:f]]), s[f:], pcs))

    def export(self, s) -> tuple:
        (a, b), (c, d), (e, f) = self._spans(s)
        T, M, C = self.store.rows
        return (s[:a], tuple([T[x] for x in s[a:b]]), tuple([M[x] for x in s[c:d]]),
                tuple([C[x] for x in s[e:f]]), s[f:])

    def import_(self, p) -> tuple:
        out = list(p[0])
        for o, part in enumerate(p[1:4]):
            table, rows = self.store.ids[o], self.store.rows[o]
            get = table.get
            for row in part:
                rid = get(row)
                if rid is None:
                    rid = table[row] = len(rows)
                    rows.append(row)
                out.append(rid)
        out.extend(p[4])
        return tuple(out)


def canonical(sym, rows: Rows, s, pcs):
    """Symmetry.canonical with the least image chosen by the process-independent fingerprint."""
    if sym.classes:
        cands = [sym._sorted(*(image(s, pcs) if image else (s, pcs)))
                 for image in [None] + [im for _, im in sym.images]]
    else:
        best_h = hash(pcs)
        imgs = [None]
        for bmap, image in sym.images:
            npcs = [0] * len(pcs)
            for b, pc in enumerate(pcs):
                npcs[bmap[b]] = pc
            h = hash(tuple(npcs))
            if h < best_h:
                best_h, imgs = h, [image]
            elif h == best_h:
                imgs.append(image)
        cands = [(s, pcs) if image is None else image(s, pcs) for image in imgs]
    best = bh = None
    for img in cands:
        h = rows.fingerprint(*img)
        if best is None or h < bh or (h == bh and img != best
                                       and repr(rows.export(img[0])) < repr(rows.export(best[0]))):
            best, bh = img, h
    return best


# ====================================================================== a worker
class Worker:
    """One partition of the search, in its own process (forked: it inherits the explorer)."""

    def __init__(self, ex: Explorer, w: int, n: int, links: "Links"):
        self.ex, self.m, self.w, self.n = ex, ex.m, w, n
        self.cmd, self.reply = links.cmd[w][0], links.rep[w][1]
        self.peers_in = [links.peer[v, w][0] for v in range(n) if v != w]
        self.peers_out = {v: links.peer[w, v][1] for v in range(n) if v != w}
        self.rows = Rows(self.m)
        self.B = max(1, self.m.nblocks)
        # as the one-process search keeps them: the keys packed in a Visited, local id -> the rest
        # in arrays; a state's own packed tuple only where its key is not the state (symmetry's
        # image, --compact's fingerprint)
        self.index = Visited(ex.compact)
        self.own = []                   # local id -> pack(state + pcs) where kept, else None
        self.nb = len(self.m.start_pcs)
        self.part = max(range(self.nb), key=lambda b: len(self.m.units[b])) if self.nb else 0
        self.gid, self.parent, self.disc = array("q"), array("q"), array("q")
        self.via_b, self.via_pc, self.progress = array("i"), array("i"), array("i")
        self.cand = []              # this level's new states (local ids), not yet given their ids
        self.frontier, self.at_front = [], 0
        self.finals = []            # local ids of final states (kept with --all-finals)
        self.edges = None if ex.compact else (array("q"), array("q"))     # parent id, child's local id
        self.canon = None
        self.local_of = None        # id -> local id, built when a path is asked for
        self.ppid = os.getppid()

    # ---- the keys ---------------------------------------------------------------
    def key(self, s, pcs):
        """(key, its owner, the key as it travels) of a state.  The owner is read off the key's
        program counter of one block, the longest (a number alike in every process, costing
        nothing): a step of any other block leaves its successor with the worker that has it,
        and the states of one level mostly differ in that counter.  --compact keys are
        fingerprints, their owner their hash's."""
        if self.canon is not None:
            k = canonical(self.canon, self.rows, s, pcs)
        else:
            k = (s, pcs)
        if self.ex.compact:
            f = self.rows.fingerprint(*k)
            return f, hash((f, 1)) % self.n, f
        owner = k[1][self.part] % self.n if k[1] else 0
        return pack(k[0] + k[1]), owner, None if self.canon is None else (self.rows.export(k[0]), k[1])

    def state(self, j) -> tuple:
        """(state, pcs) of local id j."""
        o = self.own[j]
        t = unpack(o if o is not None else self.index.key(j))
        return (t[:-self.nb], t[-self.nb:]) if self.nb else (t, ())

    def keep(self, k, s, pcs, disc, via, fresh):
        """An owner's side of a successor: a new state, a shorter way to one, or one seen."""
        n = len(self.gid)
        j = self.index.add(k)
        b, pc = via if via is not None else (-1, -1)
        if j == n:
            self.own.append(pack(s + pcs) if self.canon is not None or self.ex.compact else None)
            self.gid.append(-1)
            self.parent.append(disc // self.B)
            self.via_b.append(b)
            self.via_pc.append(pc)
            self.progress.append(sum(pcs))
            self.disc.append(disc)
            self.cand.append(j)
            fresh.append(j)
        elif self.gid[j] < 0 and disc < self.disc[j]:
            # the one-process search keeps the first way there, the least (parent id, place)
            if self.own[j] is not None:
                self.own[j] = pack(s + pcs)
            self.parent[j], self.via_b[j], self.via_pc[j], self.disc[j] = disc // self.B, b, pc, disc
        if self.edges is not None and disc >= 0:
            self.edges[0].append(disc // self.B)
            self.edges[1].append(j)

    # ---- one segment ------------------------------------------------------------
    def segment(self, hi: int):
        """Expand the states this worker owns with ids below hi; exchange their successors."""
        ex, m, rows = self.ex, self.m, self.rows
        units, lens = m.units, [len(us) for us in m.units]
        restore, waiting, step = m.restore, m.waiting, ex.memo.step
        final, all_finals, compact = m.final, ex.all_finals, ex.compact
        persistent = ex.persistent if ex.por else None
        B, n, w = self.B, self.n, self.w
        out = [[] for _ in range(n)]
        fresh = []
        recs = []           # per state expanded: (id, transitions, pruned, event or None)
        blocks = range(m.nblocks)
        front = self.frontier
        at = None
        while self.at_front < len(front) and self.gid[front[self.at_front]] < hi:
            li = front[self.at_front]
            self.at_front += 1
            g = self.gid[li]
            s, pcs = self.state(li)
            if compact:
                self.own[li] = None
            live = tuple([b for b in blocks if pcs[b] < lens[b]])
            if not live:
                self.finals.append(li)
                if compact and all_finals:
                    self.own[li] = pack(s + pcs)
                ev = ("final", None, None)
                if final is not None:
                    restore(s)
                    at = None
                    ev = ("final",) + tuple(m.judge_final())
                recs.append((g, 0, False, ev))
                continue
            enabled = tuple([b for b in live if units[b][pcs[b]].waits_for is None
                             or not waiting(s, units[b][pcs[b]])])
            if not enabled:
                recs.append((g, 0, False, ("deadlock", m.deadlock(pcs))))
                continue
            fire_set = persistent(pcs, enabled, live, s) if persistent is not None else enabled
            ev = None
            nt = 0
            for pos, b in enumerate(fire_set):
                u = units[b][pcs[b]]
                outcome, fail, s2, held = step(u, s, at is li)
                at = li if held else None
                nt += 1
                if outcome == FAILED:
                    if ev is None:
                        ev = ("fail", pos, (b, pcs[b]), fail)
                    if not all_finals:
                        break
                    continue
                npcs = list(pcs)
                npcs[b] = lens[b] if outcome == ENDED else pcs[b] + 1
                npcs = tuple(npcs)
                k, o, travels = self.key(s2, npcs)
                disc = g * B + pos
                if o == w:
                    self.keep(k, s2, npcs, disc, (b, pcs[b]), fresh)
                else:
                    out[o].append((travels, rows.export(s2), npcs, disc, (b, pcs[b])))
            recs.append((g, nt, len(fire_set) < len(enabled), ev))
        # a batch larger than a pipe holds goes from a thread while this one receives: two
        # workers sending each other one would otherwise block
        big = []
        for v, c in self.peers_out.items():
            data = pickle.dumps(out[v], pickle.HIGHEST_PROTOCOL)
            if len(data) < PIPE_BYTES:
                c.send_bytes(data)
            else:
                big.append((c, data))
        sender = threading.Thread(target=lambda: [c.send_bytes(d) for c, d in big]) if big else None
        if sender is not None:
            sender.start()
        for batch in self.batches():
            for travels, sp, npcs, disc, via in batch:
                s2 = rows.import_(sp)
                if travels is None:
                    k = pack(s2 + npcs)
                elif compact:
                    k = travels
                else:
                    k = pack(rows.import_(travels[0]) + travels[1])
                self.keep(k, s2, npcs, disc, via, fresh)
        found = array("q", sorted(self.disc[j] for j in fresh))
        # the peak only where --max-memory asks each segment (getrusage is a system call)
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss if ex.max_memory is not None else 0
        if sender is not None:
            sender.join()
        self.reply.send(("done", recs, found, rss))

    def number(self, gids) -> None:
        """The level ends: its new states get their ids (in the order of their discovery keys)."""
        self.cand.sort(key=self.disc.__getitem__)
        for j, g in zip(self.cand, gids):
            self.gid[j] = g
        self.frontier, self.at_front, self.cand = self.cand, 0, []

    def alive(self) -> None:
        if os.getppid() != self.ppid:       # the coordinator is gone: so is this worker
            os._exit(0)

    def get(self):
        while not self.cmd.poll(POLL):
            self.alive()
        return self.cmd.recv()

    def batches(self):
        """One batch from each other worker, as they come."""
        left = list(self.peers_in)
        while left:
            ready = wait(left, POLL)
            if not ready:
                self.alive()
            for c in ready:
                left.remove(c)
                yield c.recv()

    def serve(self) -> None:
        m = self.m
        if self.ex.sym is not None:
            self.canon = self.ex.sym
        k, o, _ = self.key(m.start, m.start_pcs)
        if o == self.w:
            self.keep(k, m.start, m.start_pcs, -self.B, None, [])
            self.number([0])
        while True:
            msg = self.get()
            op = msg[0]
            if op == "segment":
                _, hi, gids, symmetry = msg
                if gids is not None:
                    self.number(gids)
                if symmetry and self.canon is None:
                    self.ex._find_symmetry()
                    self.canon = self.ex.sym
                self.segment(hi)
            elif op == "parent":
                if self.local_of is None:
                    self.local_of = {g: j for j, g in enumerate(self.gid) if g >= 0}
                j = self.local_of[msg[1]]
                via = (self.via_b[j], self.via_pc[j]) if self.via_b[j] >= 0 else None
                self.reply.send(("parent", self.parent[j], via))
            elif op == "finals":
                self.reply.send(("finals", [(self.gid[j], self.rows.export(self.state(j)[0])) for j in self.finals]))
            elif op == "edges":
                e0, e1 = self.edges
                self.reply.send(("edges", array("q", self.gid), self.progress, e0,
                                   array("q", [self.gid[j] for j in e1])))
            elif op == "rss":
                self.reply.send(("rss", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))
            elif op == "symmetry":
                self.reply.send(("symmetry", self.canon.size() if self.canon is not None else 1))
            elif op == "stop":
                return


class Links:
    """The pipes: coordinator -> worker (cmd), worker -> coordinator (rep), worker -> worker (peer)."""

    def __init__(self, ctx, n: int):
        self.cmd = [ctx.Pipe(duplex=False) for _ in range(n)]
        self.rep = [ctx.Pipe(duplex=False) for _ in range(n)]
        self.peer = {(a, b): ctx.Pipe(duplex=False) for a in range(n) for b in range(n) if a != b}

    def close(self) -> None:
        for r, s in self.cmd + self.rep + list(self.peer.values()):
            r.close()
            s.close()


def _work(ex, w, n, links) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)    # Ctrl-C is the coordinator's: it ends the workers
    try:
        Worker(ex, w, n, links).serve()
    except BaseException:
        links.rep[w][1].send(("error", traceback.format_exc()))
    os._exit(0)


# ====================================================================== the coordinator
class WorkerFailed(RuntimeError):
    pass


class ParallelExplorer(Explorer):
    """Explorer.run over `jobs` worker processes: the same verdict, counts and shortest witness."""

    def __init__(self, model, jobs: int, **kw):
        super().__init__(model, **kw)
        self.jobs = jobs

    def run(self) -> Result:
        m = self.m
        if m.stepped or self.on_edge is not None:
            res = super().run()     # over kernel steps: one process (docs/explore.md)
            res.stats.jobs = 1
            return res
        ctx = mp.get_context("fork")
        n = self.jobs
        self._links = Links(ctx, n)
        self._procs = [ctx.Process(target=_work, args=(self, w, n, self._links), daemon=True)
                       for w in range(n)]
        done = False
        try:
            for p in self._procs:
                p.start()
            res = self._search()
            done = True
            return res
        finally:
            self._shutdown(done)

    def _shutdown(self, done: bool) -> None:
        """Stop the workers: asked to when the search ended, killed when it was interrupted."""
        if done:
            for r, s in self._links.cmd:
                s.send(("stop",))
        for p in self._procs:
            if p.pid is not None:
                if done:
                    p.join(5.0)
                if p.is_alive():
                    p.kill()
                p.join()
        self._links.close()
        self._procs = self._links = None        # the explorer is in its workers' arguments: no cycle left

    def _get(self, w: int, want: str):
        c = self._links.rep[w][0]
        while not c.poll(POLL):
            p = self._procs[w]
            if not p.is_alive():
                raise WorkerFailed(f"explore --jobs: worker process {p.pid} ended (exit status {p.exitcode})")
        msg = c.recv()
        if msg[0] == "error":
            raise WorkerFailed(f"explore --jobs: worker {w} failed:\n{msg[1]}")
        assert msg[0] == want, msg[0]
        return msg

    def _ask(self, w: int, *msg):
        self._links.cmd[w][1].send(msg)
        return self._get(w, msg[0])

    def _search(self) -> Result:
        m, t0, n = self.m, self.t0, self.jobs
        stats = Stats()
        stats.jobs = n
        res = Result(m, stats, complete=False, por=self.por)
        B = max(1, m.nblocks)
        rows = Rows(m)
        owner = bytearray(1)            # per id, the worker that holds the state (the start: never asked)
        max_states, max_seconds, max_memory = self.max_states, self.max_seconds, self.max_memory
        all_finals, final = self.all_finals, m.final
        exists = final is not None and final.quantifier == "exists"
        expanded = transitions = 0
        distinct = 1
        level_hi = 1                    # the ids of the level being expanded end here
        level = 0
        gids = [None] * n               # ids for each worker's new states, sent with the next segment
        found_level = []                # the level's new states: discovery key * n + worker
        failure = fail_from = exists_id = None
        final_ids = []
        stop = ""
        symmetry = self.sym is not None
        lo = 0
        if max_seconds is not None and time.perf_counter() - t0 > max_seconds:
            stop = f"stopped after {max_seconds:g} s (--max-seconds)"
        halted = bool(stop)
        while not halted and lo < level_hi:
            # a segment: up to the next bound check, within the level
            hi = min(level_hi, (lo + 1) // SEGMENT * SEGMENT + SEGMENT - 1)
            if lo > 0 and (lo + 1) % SEGMENT == 0:
                # where search.py checks, before expanding state lo (its expanded count already lo + 1)
                el = time.perf_counter() - t0
                if self.want_symmetry and distinct >= self.symmetry_after:
                    self.want_symmetry = False
                    symmetry = True
                if self.progress is not None:
                    self.progress(lo + 1, distinct, level, el)
                if max_seconds is not None and el > max_seconds:
                    stop = f"stopped after {max_seconds:g} s (--max-seconds)"
                    expanded = lo + 1
                    break
                if max_memory is not None and self._rss > max_memory * 1024:
                    stop = f"stopped at {max_memory:g} MB of memory (--max-memory)"
                    expanded = lo + 1
                    break
            for w in range(n):
                self._links.cmd[w][1].send(("segment", hi, gids[w], symmetry))
            gids = [None] * n
            recs, found, rss = [], [], 0
            for w in range(n):
                _, r, f, mem = self._get(w, "done")
                recs += r
                found.append(f)
                rss += mem
            self._rss = rss + resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            recs.sort(key=lambda r: r[0])
            new = sorted(d for f in found for d in f)
            at = 0              # new states found by the states before the one being looked at
            for g, nt, pruned, ev in recs:
                expanded += 1
                if pruned:
                    res.pruned = True
                cut = None      # where this state's successors stop counting, if the search stops here
                if ev is not None and ev[0] == "final":
                    final_ids.append(g)
                    held, detail = ev[1], ev[2]
                    if final is not None:
                        if exists and held:
                            res.exists_count += 1
                            if exists_id is None:
                                exists_id = g
                        elif not held and final.quantifier == "forall":
                            if failure is None:
                                failure = Failure("final", f"final forall does not hold: {detail}", "",
                                                  final.line, final.col)
                                fail_from = (g, None)
                            if not all_finals:
                                cut = g * B
                elif ev is not None and ev[0] == "deadlock":
                    stats.deadlocks += 1
                    if failure is None:
                        failure, fail_from = ev[1], (g, None)
                    if not all_finals:
                        cut = g * B
                else:
                    transitions += nt
                    if ev is not None:
                        _, pos, last, fail = ev
                        if failure is None:
                            failure, fail_from = fail, (g, last)
                        if not all_finals:
                            cut = g * B + pos
                if cut is None:
                    cut = (g + 1) * B
                    at = bisect_left(new, cut, at)
                    if max_states is not None and distinct + at >= max_states \
                            and (ev is None or ev[0] not in ("final", "deadlock")):
                        stop = f"stopped at {max_states:,} states (--max-states)"
                        halted = True
                        break
                    continue
                at = bisect_left(new, cut, at)
                halted = True
                break
            if not halted:
                at = len(new)
            distinct += at
            if at:
                stats.depth = level + 1
            if halted:
                break
            found_level += [d * n + w for w, f in enumerate(found) for d in f]
            lo = hi
            if lo == level_hi:          # the level ends: number its new states as search.py's queue does
                found_level.sort()
                gids = [array("q") for _ in range(n)]
                g = level_hi
                for x in found_level:
                    w = x % n
                    gids[w].append(g)
                    owner.append(w)
                    g += 1
                found_level = []
                level_hi = g
                level += 1
        stats.states, stats.transitions, stats.distinct = expanded, transitions, distinct
        stats.finals = len(final_ids)
        self._owner = owner
        res.symmetry = self._ask(0, "symmetry")[1]
        if self.compact:
            p = -math.expm1(-distinct * (distinct - 1) / 2.0 ** 65)
            res.compact = {"fingerprint_bits": 64, "collision_probability": p}
            if not stop and expanded == distinct and failure is None:
                stop = (f"hash compaction (--compact) may have taken two of the {distinct:,} states for one: "
                        f"probability {p:.1e} that two share a 64-bit fingerprint")
        res.stop_reason = stop
        res.complete = not stop and expanded == distinct
        if failure is not None:
            res.failure = failure
            g, last = fail_from
            res.path = self._path_to(g) + ([last] if last is not None else [])
            if last is not None and self.por:
                res.path = self.causal(res.path, failure)
        if exists_id is not None:
            res.exists_path = self._path_to(exists_id)
        if all_finals:
            got = []
            for w in range(n):
                got += self._ask(w, "finals")[1]
            keep = set(final_ids)
            res.finals = [rows.import_(p) for g, p in sorted(got) if g in keep]
        if res.complete and failure is None and not self.compact:
            stats.interleavings = self._interleavings(distinct)
        stats.seconds = time.perf_counter() - t0
        # the processes' peaks added up (JSON: peak_memory_kb)
        stats.peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss + \
            sum(self._ask(w, "rss")[1] for w in range(n))
        return res

    _rss = 0

    def _path_to(self, g: int) -> list:
        out = []
        while g > 0:
            _, g, via = self._ask(self._owner[g], "parent", g)
            out.append(via)
        out.reverse()
        return out

    def _interleavings(self, total: int) -> int:
        """search.count_paths over the graph the workers hold: each one's edges, gathered into
        the one-process search's flat successor arrays (grouped by parent: a counting sort)."""
        progress = array("i", bytes(4 * total))
        parents, children = array("q"), array("q")
        for w in range(self.jobs):
            _, gid, psum, parent, child = self._ask(w, "edges")
            for g, s in zip(gid, psum):
                progress[g] = s
            parents.extend(parent)
            children.extend(child)
        succ_at = array("q", bytes(8 * (total + 1)))
        for a in parents:
            succ_at[a + 1] += 1
        for i in range(total):
            succ_at[i + 1] += succ_at[i]
        fill = array("q", succ_at)
        succ = array("q", bytes(8 * len(children)))
        for a, b in zip(parents, children):
            succ[fill[a]] = b
            fill[a] += 1
        return count_paths(succ, succ_at, progress)

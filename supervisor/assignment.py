"""Which replica should serve which node: computed the same way by every replica.

A pure function of what the replicas announce in their membership Leases (the nodes
each one's projects file lists, with their weights) and of who is alive. Every
replica sees the same Leases, so every replica computes the same answer, and nobody
has to win an argument about it: each takes what is its own and hands off what is
not (``supervisor.py``).

The method is rendezvous hashing with bounded loads:

* Every (node, replica) pair gets a score from a hash of both names (not Python's
  ``hash``, which differs between processes). A node prefers replicas in score order.
  Adding or removing a replica leaves every other pair's score alone, which is what
  keeps movement small.
* Replicas have a capacity: the total weight over the number of replicas, rounded
  down, and one more for as many replicas as the remainder needs. So with weights of
  1, every replica gets the same count give or take one (30 nodes over 3 replicas:
  10 each). Nodes are placed heaviest first, then in an order fixed by their own
  hash; each goes to the first replica in its preference order with room left. A node
  that fits nowhere (a heavy one at the end) goes to its least-loaded candidate.
* A node's candidates are only the live replicas that announce it. During a rolling
  update two replicas may have different files for a while: a node is never handed to
  a replica that would not take it, and a replica whose file does not list a node is
  never given it.

Weights are the projects file's ``weight`` (a whole number, default 1): how much of a
replica's work a node is. They come from the file, never from something that moves
by the minute (pod counts), which would move nodes back and forth.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Demand:
    """One node as the live replicas announce it."""

    weight: int
    candidates: frozenset[str]
    """Identities of the live replicas whose projects file lists the node."""


def score(node: str, member: str) -> int:
    """The pair's rendezvous score: the same in every process, on every machine."""
    digest = hashlib.blake2b(f"{node}\0{member}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def demands(announcements: Mapping[str, Mapping[str, int]]) -> dict[str, Demand]:
    """``{member: {node: weight}}`` -> ``{node: Demand}``. Two files may give a node two
    weights while they differ; the larger one counts, the same in every replica."""
    weights: dict[str, int] = {}
    candidates: dict[str, set[str]] = {}
    for member, nodes in announcements.items():
        for node, weight in nodes.items():
            weights[node] = max(weight, weights.get(node, 0))
            candidates.setdefault(node, set()).add(member)
    return {node: Demand(weights[node], frozenset(candidates[node])) for node in weights}


def assign(nodes: Mapping[str, Demand], members: Iterable[str]) -> dict[str, str]:
    """``{node: member}`` for every node with a live candidate among ``members``."""
    live = sorted(set(members))
    if not live:
        return {}
    placeable = {n: d for n, d in nodes.items() if d.candidates & set(live)}
    total = sum(d.weight for d in placeable.values())
    base, extra = divmod(total, len(live))
    load = dict.fromkeys(live, 0)
    above_base = 0
    """Replicas loaded past ``base``: at most ``extra`` of them may be."""
    placed: dict[str, str] = {}
    for node in sorted(placeable, key=lambda n: (-placeable[n].weight, score(n, ""), n)):
        demand = placeable[node]
        ranked = sorted(
            (m for m in live if m in demand.candidates),
            key=lambda m: (score(node, m), m),
            reverse=True,
        )
        chosen = None
        for member in ranked:
            after = load[member] + demand.weight
            if after <= base or (after <= base + 1 and (load[member] > base or above_base < extra)):
                chosen = member
                break
        if chosen is None:
            chosen = min(ranked, key=lambda m: (load[m], ranked.index(m)))
        if load[chosen] <= base < load[chosen] + demand.weight:
            above_base += 1
        load[chosen] += demand.weight
        placed[node] = chosen
    return placed

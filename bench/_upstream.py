"""Upstream of bench/apply.py: simulated WeCom corps in their own process, and the contact events their changes send.

    python bench/_upstream.py --corps N --members M --departments D [--depth K --seed S]

Prints one JSON line with each corp's credentials and apiBase (what ``corpsync simulate`` prints, for N
self-built corps), then answers JSON commands on stdin, one per line, until EOF:
``{"cmd": "events", "total", "rate", "thin", "start", "out"}`` changes the orgs ``total`` times (event i
in corp i % N, stamped start + i / rate) and writes each change's callback plaintext to ``out`` as JSON
lines ``[corp index, change, plaintext]``; ``{"cmd": "stats"}`` answers the API calls served since the
last ``stats``; ``{"cmd": "state"}`` answers each org as it is now (what the local directory should equal).
Because the simulator's orgs are the ones changed, a thin event's fetch reads the org as it is after every
change of the run (as the platform answers a late read).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import random
import sys
from collections import Counter, deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import orjson

from receiver.testing import Callbacks, SimMember, SimOrg, Simulator, describe, generate_org, mutations, run_simulator

# What HR does all day, in shares of 100: mostly detail updates and moves of existing members, some
# joins and leaves, a few department changes. Every form is the full (pre-2022-08-15) one unless thin.
MIX = (
    ("update_member", 62),
    ("move_member", 15),
    ("add_member", 8),
    ("remove_member", 4),
    ("rename_department", 6),
    ("add_department", 3),
    ("move_department", 2),
)
SETTLE_SECONDS = 2.0  # a member or department created by the run is changed only this long after its create
DETAILS = ("position", "mobile", "email", "name", "alias", "telephone", "gender")
_TITLES = ("工程师", "产品经理", "设计师", "销售代表", "会计", "专员", "主管", "经理", "总监", "助理")
_NAMES = ("王伟", "李娜", "张敏", "刘洋", "陈静", "杨磊", "赵丽", "黄强", "周杰", "吴芳", "徐明", "孙悦")


class Changes:
    """One corp's org and what the run may touch in it: members and departments that exist at sync time,
    plus those the run created at least ``settle`` events ago (so no change overtakes the create)."""

    def __init__(self, org: SimOrg, rng: random.Random, settle: int) -> None:
        self.org = org
        self.rng = rng
        self.settle = settle
        self.members = sorted(org.members)
        self.depts = sorted(org.departments)
        self.new_members: deque[tuple[int, str]] = deque()
        self.new_depts: deque[tuple[int, int]] = deque()

    def settled(self, i: int) -> None:
        while self.new_members and self.new_members[0][0] <= i - self.settle:
            self.members.append(self.new_members.popleft()[1])
        while self.new_depts and self.new_depts[0][0] <= i - self.settle:
            self.depts.append(self.new_depts.popleft()[1])

    def detail(self, attr: str, userid: str, i: int) -> Any:
        """A new value of one member detail (the change is left out when it equals the old one)."""
        rng = self.rng
        if attr == "position":
            return rng.choice(_TITLES)
        if attr == "mobile":
            return f"13{rng.randrange(10**9):09d}"
        if attr == "email":
            return f"{userid}.{i}@example.com"
        if attr == "name":
            return rng.choice(_NAMES) + rng.choice(_NAMES)[1]
        if attr == "alias":
            return f"a{i}"
        if attr == "telephone":
            return f"020-{rng.randrange(10**7):07d}"
        return 3 - self.org.member(userid).gender  # gender: 1 ↔ 2

    def make(self, kind: str, i: int) -> Callbacks:
        """One change of ``kind``; ValueError when it cannot be made now (the caller picks another)."""
        org, rng = self.org, self.rng
        if kind == "update_member":
            userid = rng.choice(self.members)
            attrs = rng.sample(DETAILS, rng.randrange(1, 4))
            return mutations.update_member(org, userid, **{a: self.detail(a, userid, i) for a in attrs})
        if kind == "move_member":
            depts = rng.sample(self.depts, rng.choice((1, 1, 1, 2)))
            return mutations.move_member(org, rng.choice(self.members), depts)
        if kind == "add_member":
            change = mutations.add_member(org, departments=rng.sample(self.depts, rng.choice((1, 1, 1, 2))))
            self.new_members.append((i, str(change.subject)))
            return change
        if kind == "remove_member":
            userid = self.members.pop(rng.randrange(len(self.members)))
            return mutations.remove_member(org, userid)
        if kind == "rename_department":
            dept = rng.choice(self.depts)
            return mutations.rename_department(org, dept, f"{org.department(dept).name[:6]}{i}")
        if kind == "add_department":
            change = mutations.add_department(org, parent_id=rng.choice(self.depts), name=f"项目组{i}")
            self.new_depts.append((i, int(str(change.subject))))
            return change
        dept = rng.choice([d for d in self.depts if d != org.root_id])
        return mutations.move_department(org, dept, rng.choice(self.depts))


def generate(orgs: list[SimOrg], command: dict[str, Any]) -> dict[str, Any]:
    """Write the run's events (see the module docstring); answer their count and mix."""
    total, rate, thin, start = int(command["total"]), float(command["rate"]), float(command["thin"]), command["start"]
    rng = random.Random(command.get("seed", 7))
    kinds, weights = zip(*MIX, strict=True)
    changes = [Changes(org, rng, int(SETTLE_SECONDS * rate)) for org in orgs]
    seen: set[bytes] = set()
    mix: Counter[str] = Counter()
    clock = [float(start)]
    for org in orgs:
        org.clock = lambda: clock[0]
    with Path(command["out"]).open("wb") as out:
        i = 0
        while i < total:
            corp = i % len(orgs)
            clock[0] = start + i / rate
            state = changes[corp]
            state.settled(i)
            kind = rng.choices(kinds, weights)[0]
            try:
                change = state.make(kind, i)
            except (ValueError, IndexError):  # e.g. a department cycle, or nothing left to pick
                continue
            lean = rng.random() < thin and change.wecom_thin
            for body in change.wecom_thin if lean else change.wecom:
                digest = hashlib.sha256(body).digest()
                if digest in seen:  # the same plaintext again (A→B→A within a second) would be deduplicated
                    continue
                seen.add(digest)
                change_type = body.split(b"<ChangeType>", 1)[1].split(b"<", 1)[0].decode()
                name = f"{kind} ({'thin ' if lean else ''}{change_type})"
                out.write(orjson.dumps([corp, name, body.decode()]) + b"\n")
                mix[name] += 1
                i += 1
    return {"events": i, "mix": dict(mix.most_common())}


def _member_state(m: SimMember) -> list[Any]:
    return [m.name, m.position or None, m.alias or None, m.telephone or None, sorted(str(d) for d in m.departments)]


def state(orgs: list[SimOrg]) -> dict[str, Any]:
    """Per corp: members (name, position, alias, telephone, department ids) and departments (name, parent)."""
    return {
        "corps": [
            {
                "members": {m.userid: _member_state(m) for m in org.members.values()},
                "departments": {str(d.id): [d.name, str(d.parentid)] for d in org.departments.values()},
                "root": str(org.root_id),
            }
            for org in orgs
        ]
    }


async def serve(args: argparse.Namespace) -> None:
    sim = Simulator(seed=args.seed)
    depth = min(args.depth, args.departments)
    orgs = [generate_org(args.seed + k, args.members, args.departments, depth) for k in range(args.corps)]
    corps = [sim.add_wecom_corp(org) for org in orgs]
    async with run_simulator(sim):
        described = describe(sim)["wecom"]
        print(orjson.dumps({"url": sim.url, "corps": [described[c.corp_id] for c in corps]}).decode(), flush=True)
        loop = asyncio.get_running_loop()
        actions: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "events": lambda command: generate(orgs, command),
            "stats": lambda command: {"calls": dict(sim.calls)},
            "state": lambda command: state(orgs),
        }
        while line := await loop.run_in_executor(None, sys.stdin.readline):
            command = orjson.loads(line)
            answer = actions[command["cmd"]](command)
            if command["cmd"] == "stats":
                sim.reset_counters()
            print(orjson.dumps(answer).decode(), flush=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--corps", type=int, default=1)
    p.add_argument("--members", type=int, default=500)
    p.add_argument("--departments", type=int, default=40)
    p.add_argument("--depth", type=int, default=4)
    p.add_argument("--seed", type=int, default=1)
    asyncio.run(serve(p.parse_args()))
    return 0


if __name__ == "__main__":
    sys.exit(main())

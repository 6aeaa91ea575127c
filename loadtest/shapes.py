"""Load profiles: constant, step ramp (find the knee), spike and attack, as one Locust shape.

Each profile is a pure function of the run time (``tick(t) -> (users, spawn_rate) | None``,
``None`` ends the run), unit-tested without Locust. :class:`ProfileShape` is the one
``LoadTestShape`` the locustfile exposes; it picks the profile named by ``--shape``
(``FRAUD_LOADTEST_SHAPE``) and reads ``--users``, ``--spawn-rate`` and ``--run-time`` like
a plain run does. With Kafka users every user sends ``--user-rate`` transactions per
second, so users x user-rate is the offered load.

* constant: ``users`` for the whole run;
* step: ``step_users`` more users every ``step_time_s`` up to ``users`` (each step is one
  load level; the stats history shows where latency bends - the knee);
* spike: ``users``, then ``spike_users`` at once from ``spike_at_s`` for ``spike_time_s``,
  then back to ``users`` (does the backlog drain and the latency recover?);
* attack: the spike, and while it lasts the traffic is an attack burst
  (:class:`loadtest.mixes.AttackBurst`): a share of the transactions is stolen cards
  spending past the simulator's fraud threshold again and again, so the scorer flags far
  more than the simulator's ~0.5 % (does the SLA hold when the explanations pile up?).
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from typing import Literal, Protocol

from locust import LoadTestShape

from loadtest.feed import ATTACK

ShapeName = Literal["constant", "step", "spike", "attack"]
SHAPES: tuple[ShapeName, ...] = ("constant", "step", "spike", "attack")
Tick = tuple[int, float] | None


class Profile(Protocol):
    def tick(self, t: float) -> Tick: ...


@dataclass(frozen=True)
class Constant:
    users: int
    spawn_rate: float
    run_time_s: float | None = None

    def tick(self, t: float) -> Tick:
        if self.run_time_s is not None and t >= self.run_time_s:
            return None
        return (self.users, self.spawn_rate)


@dataclass(frozen=True)
class Step:
    users: int
    step_users: int
    step_time_s: float
    spawn_rate: float
    run_time_s: float | None = None  # default: one step time at each level, then stop

    @property
    def steps(self) -> int:
        return math.ceil(self.users / self.step_users)

    def step_of(self, t: float) -> int:
        return int(t // self.step_time_s)

    def tick(self, t: float) -> Tick:
        end = self.run_time_s if self.run_time_s is not None else self.steps * self.step_time_s
        if t >= end:
            return None
        return (min(self.users, (self.step_of(t) + 1) * self.step_users), self.spawn_rate)


@dataclass(frozen=True)
class Spike:
    users: int
    spike_users: int
    spike_at_s: float
    spike_time_s: float
    spawn_rate: float
    run_time_s: float | None = None  # default: as long after the spike as before it

    def tick(self, t: float) -> Tick:
        end = self.run_time_s
        if end is None:
            end = 2 * self.spike_at_s + self.spike_time_s
        if t >= end:
            return None
        if self.spike_at_s <= t < self.spike_at_s + self.spike_time_s:
            return (self.spike_users, float(max(self.spawn_rate, self.spike_users)))  # at once
        return (self.users, self.spawn_rate)


@dataclass(frozen=True)
class Attack:
    """A :class:`Spike` whose extra load is an attack burst (:meth:`attacking`)."""

    spike: Spike

    def tick(self, t: float) -> Tick:
        return self.spike.tick(t)

    def attacking(self, t: float) -> bool:
        """Whether the feed sends the attack mix at run time ``t``."""
        start = self.spike.spike_at_s
        return start <= t < start + self.spike.spike_time_s


def build_profile(options: argparse.Namespace) -> Profile:
    """The profile named by ``options.shape``, from Locust's parsed options."""
    users = int(options.num_users or 1)
    spawn_rate = float(options.spawn_rate or users)
    run_time = float(options.run_time) if options.run_time else None
    shape: ShapeName = options.shape
    if shape == "step":
        step_users = int(options.step_users or max(1, users // 5))
        return Step(users, step_users, float(options.step_time_s), spawn_rate, run_time)
    if shape in ("spike", "attack"):
        spike_users = int(options.spike_users or 3 * users)
        spike_at = options.spike_at_s
        if spike_at is None:
            spike_at = run_time / 3 if run_time else 30.0
        spike = Spike(
            users, spike_users, float(spike_at), float(options.spike_time_s), spawn_rate, run_time
        )
        return Attack(spike) if shape == "attack" else spike
    return Constant(users, spawn_rate, run_time)


class ProfileShape(LoadTestShape):
    """The load shape of every run: the profile chosen by ``--shape``."""

    use_common_options = True

    def __init__(self) -> None:
        super().__init__()
        self._profile: Profile | None = None

    def tick(self) -> Tick:
        if self._profile is None:
            assert self.runner is not None and self.runner.environment.parsed_options
            self._profile = build_profile(self.runner.environment.parsed_options)
        t = self.get_run_time()
        if isinstance(self._profile, Attack):
            ATTACK.on = self._profile.attacking(t)
        return self._profile.tick(t)

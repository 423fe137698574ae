"""Fixtures for tests that talk to the Graph simulator over real HTTP on loopback.

Import the fixtures a module needs: ``from tests.support.graph import sim, client, sleeps  # noqa: F401``.
``sim`` stands still in time (``SimClock(speed=0)``): move it with ``sim.clock.advance(seconds)``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.credential.base import StaticToken
from bot.graph.client import GraphClient
from bot.rehearsal.simulator import GraphSimulator, SimClock

TOKEN = "simulator-test-token"


def start_simulator(*, seed: bool = True, token: str | None = TOKEN, **options) -> GraphSimulator:
    """A started simulator with a frozen clock."""
    return GraphSimulator(clock=SimClock(speed=0), seed=seed, token=token, **options).start()


@pytest.fixture
def sim() -> Iterator[GraphSimulator]:
    """A seeded simulator that accepts only :data:`TOKEN`."""
    simulator = start_simulator()
    try:
        yield simulator
    finally:
        simulator.stop()


@pytest.fixture
def sleeps() -> list[float]:
    """What the client asked to sleep, in order (the client never really sleeps in tests)."""
    return []


@pytest.fixture
def client(sim: GraphSimulator, sleeps: list[float]) -> Iterator[GraphClient]:
    """A client for ``sim`` with short timeouts and a recording ``sleep``."""
    graph = GraphClient(sim.base_url, StaticToken(TOKEN), timeout=2.0, connect_timeout=1.0, sleep=sleeps.append)
    try:
        yield graph
    finally:
        graph.close()

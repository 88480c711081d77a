"""A lease's belief bounded by the monotonic clock, the single-node elector, the settings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from csms.cluster.lease import Lease, LocalElector, SqlElector
from csms.config import ClusterConfig, load_settings
from csms.errors import ConfigError, StoreUnavailable
from csms.store.leases import Claim
from tests.conftest import make_settings


class FakeMonotonic:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_a_grant_is_believed_until_ttl_after_it_was_asked_for() -> None:
    clock = FakeMonotonic()
    lease = Lease("x", monotonic=clock)
    assert not lease.held()
    assert lease.granted(1, sent_at=99.0, ttl_s=10.0)  # asked at 99, answered at 100
    clock.t = 108.9
    assert lease.held()
    clock.t = 109.0  # 99 + 10: the database may let another node take over from here on
    assert not lease.held()


def test_a_renewal_keeps_the_holding_and_a_new_token_is_a_new_holding() -> None:
    clock = FakeMonotonic()
    lease = Lease("x", monotonic=clock)
    assert lease.granted(3, sent_at=100.0, ttl_s=10.0)
    assert not lease.granted(3, sent_at=105.0, ttl_s=10.0)  # renewed
    clock.t = 112.0
    assert lease.held()
    assert lease.granted(4, sent_at=112.0, ttl_s=10.0)  # taken over again after a loss
    assert lease.lost()
    assert not lease.held() and lease.token is None
    assert not lease.lost()


def test_the_single_node_elector_runs_everything() -> None:
    elector = LocalElector("n1")
    assert elector.lease("balancer").held()
    assert elector.lease("balancer") is elector.lease("balancer")
    assert elector.names() == [("balancer", True)]


async def test_the_single_node_elector_lists_its_leases_without_expiry() -> None:
    elector = LocalElector("n1")
    elector.lease("b")
    elector.lease("a")
    assert [(x.name, x.holder, x.expires_at, x.held_here) for x in await elector.leases()] == [
        ("a", "n1", None, True), ("b", "n1", None, True),
    ]


class FlakyLeases:
    """A lease table that answers, refuses, or is unreachable, as the test says."""

    def __init__(self) -> None:
        self.answer: Claim | Exception | None = Claim(1, datetime.now(UTC) + timedelta(seconds=10))

    async def claim(self, name: str, node: str, token: int | None, ttl_s: float) -> Claim | None:
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


async def test_an_unreachable_database_lets_the_lease_run_out_by_itself() -> None:
    clock = FakeMonotonic()
    table = FlakyLeases()
    elector = SqlElector(table, "n1", ttl_s=10, renew_s=3, monotonic=clock)  # type: ignore[arg-type]
    lease = elector.lease("x")
    assert await elector.renew(lease)
    table.answer = StoreUnavailable("connection refused")
    clock.t = 105.0
    assert await elector.renew(lease)  # still within the grant
    clock.t = 110.0
    assert not await elector.renew(lease)
    assert lease.token == 1  # not known lost: a later renewal with this token may still succeed


async def test_a_refused_claim_drops_the_holding_at_once() -> None:
    clock = FakeMonotonic()
    table = FlakyLeases()
    elector = SqlElector(table, "n1", ttl_s=10, renew_s=3, monotonic=clock)  # type: ignore[arg-type]
    lease = elector.lease("x")
    assert await elector.renew(lease)
    table.answer = None
    assert not await elector.renew(lease)
    assert elector.names() == [("x", False)]


def test_cluster_settings_default_and_validate() -> None:
    cfg = ClusterConfig()
    assert cfg.lease_ttl_s == 10.0 and cfg.renew_s == 3.0 and cfg.node_id
    s = make_settings(Path("/tmp"), cluster={"node_id": "core-a"})
    assert s.cluster.node_id == "core-a"
    with pytest.raises(ConfigError, match="renew_s must be at most half"):
        make_settings(Path("/tmp"), cluster={"lease_ttl_s": 4, "renew_s": 3})


def test_cluster_settings_come_from_the_environment() -> None:
    env = {"CSMS_CLUSTER_NODE_ID": "core-b", "CSMS_CLUSTER_LEASE_TTL_S": "20"}
    s = load_settings(None, None, environ=env)
    assert (s.cluster.node_id, s.cluster.lease_ttl_s, s.cluster.renew_s) == ("core-b", 20.0, 3.0)

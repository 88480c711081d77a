"""A private PostgreSQL cluster shared by a module's tests; a namespace cluster for multi-host tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster.netns import Cluster
from tests.services import postgres_server


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    with postgres_server() as url:
        yield url


@pytest.fixture(scope="module")
def netns_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Network namespaces on one bridge with Mosquitto and PostgreSQL on ``infra``
    (``tests.cluster.netns``); removed with every process in it after the module."""
    with Cluster.start(Path(tmp_path_factory.mktemp("netns"))) as cluster:
        yield cluster


@pytest.fixture
def cluster(netns_cluster: Cluster) -> Iterator[Cluster]:
    """The module's namespace cluster; every process a test started on its nodes (not on
    ``infra``) is killed after the test, and the broker is running again."""
    try:
        yield netns_cluster
    finally:
        netns_cluster.kill_nodes()
        if netns_cluster.broker is None or not netns_cluster.broker.running:
            netns_cluster.start_broker()

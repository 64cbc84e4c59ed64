"""Fixtures of the reliability tests: a ``Cluster`` of real processes that is always torn down."""

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.reliability.cluster import Cluster


@pytest.fixture
def cluster_factory(tmp_path: Path) -> Iterator[Callable[..., Cluster]]:
    """Build clusters in ``tmp_path``; every process any of them started is ended at teardown."""
    clusters: list[Cluster] = []

    def make(
        database_url: str | None = None,
        *,
        exchange_env: dict[str, str] | None = None,
        service_env: dict[str, str] | None = None,
    ) -> Cluster:
        workdir = tmp_path / f"cluster-{len(clusters)}"
        workdir.mkdir()
        url = database_url or f"sqlite+aiosqlite:///{workdir / 'cashup.db'}"
        cluster = Cluster(workdir, url, exchange_env=exchange_env or {}, service_env=service_env or {})
        clusters.append(cluster)
        return cluster

    try:
        yield make
    finally:
        for cluster in clusters:
            cluster.close()


@pytest.fixture
def sqlite_cluster(cluster_factory: Callable[..., Cluster]) -> Cluster:
    """Ticking exchange + migrated SQLite database + API (no worker): the tests start and kill the workers."""
    return cluster_factory().start()


@pytest.fixture
def still_cluster(cluster_factory: Callable[..., Cluster]) -> Cluster:
    """As ``sqlite_cluster``, but the market only moves when the test says so (``POST /advance``)."""
    return cluster_factory().start(tick=False)

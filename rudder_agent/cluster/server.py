"""One DistDGL server process (started by the launcher with DGL_ROLE=server)."""

from __future__ import annotations

import os

import dgl

from rudder_agent.cluster import isolation
from rudder_agent.cluster.reproducible import seed_sampling_per_request
from rudder_agent.log import configure_logging, get_logger


def main() -> None:
    """Serve this machine's partition until every trainer has disconnected."""
    configure_logging(os.environ.get("RUDDER_LOG_LEVEL", "info"), role=f"server-{os.environ.get('DGL_SERVER_ID', '?')}")
    get_logger(__name__).info("server starting", conf=os.environ.get("DGL_CONF_PATH"))
    seed = int(os.environ.get("RUDDER_SEED", "0"))
    dgl.seed(seed)  # remote neighbour sampling runs here
    seed_sampling_per_request(seed)  # ... in an order that does not depend on which trainer asks first
    isolation.initialize(os.environ["DGL_IP_CONFIG"])  # serves, then exits the process


if __name__ == "__main__":
    main()

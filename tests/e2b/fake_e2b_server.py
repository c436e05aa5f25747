#!/usr/bin/python3
"""A faithful test E2B (docs/reference/e2b-protocol.md), for CI.

    fake_e2b_server.py [--host 127.0.0.1] [--port 0] [--port-file F]
                       [--api-key KEY ...] [--debug-ports] [--verbose]

Prints `listening on PORT`. See tests/e2b/README.md for the routes, the
/_test routes and fault injection.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fake_e2b.server import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())

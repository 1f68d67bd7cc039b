"""``python -m ingest`` = ``policyqa ingest`` (same options)."""

import sys

from policyqa.cli import main

sys.exit(main(["ingest", *sys.argv[1:]]))

"""``python -m gpuwise``: the same program as the ``gpuwise`` command."""

from gpuwise.cli.app import main

main()

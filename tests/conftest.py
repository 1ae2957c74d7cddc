"""Tests run offline: transformers must never reach for the hub."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

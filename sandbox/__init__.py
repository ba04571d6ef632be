"""Local stand-ins for the outside world, for tests and the ``seedance-bot sandbox`` command."""

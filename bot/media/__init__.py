"""The finished video: fetching it safely, and re-encoding it to fit a channel."""

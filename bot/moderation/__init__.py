"""Moderation policy: request gates, the prompt blocklist, and vetting moderators' regexes."""

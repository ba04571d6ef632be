"""Operating the bot: its metrics, its health, and the small HTTP server that shows both."""

"""The web console: pages for the people who run the bot, served by the runtime's HTTP server."""

"""The agent desk's web pages (aiohttp); the rules they follow live in ``auth/``."""

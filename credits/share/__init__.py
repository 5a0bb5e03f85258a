"""Sharing and publicity (SPEC 2.9): share cards, posters, the public 公示 page."""

"""Wuji's domain: the organisation tree, its people, and the operations on them.

Nothing here knows about aiogram; handlers and scheduled jobs both call in.
"""

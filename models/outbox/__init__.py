"""The outbox: every message that is not a direct reply, written in the transaction of the
event that causes it, then delivered by the sender (``scheduler/sender.py``).

- ``table``: the table, queueing (``enqueue``) and delivery counts;
- ``delivery``: what the sender claims and what became of each send;
- ``reachability``: members who cannot be reached, groups that changed their address.

A row says to whom (a member, a group, or a command-centre address) and what, in the words
of ``models.messages``: never a channel's payload.
"""

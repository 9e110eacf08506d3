"""The lock between the builder's threads using the database and forks of its process."""

from __future__ import annotations

import os
import threading

# Held by a thread of the builder's process while it uses the database, and taken by every
# fork: a render worker forked (by the pool's thread, to replace one) while another thread
# was inside SQLite inherited SQLite's lock, held, and hung on its first query.
database_lock = threading.RLock()
os.register_at_fork(
    before=database_lock.acquire,
    after_in_parent=database_lock.release,
    after_in_child=database_lock.release,
)

"""The lock between the builder's threads and forks of its process."""

from __future__ import annotations

import os
import threading

# Held by a thread of the builder's process while it is inside code that takes locks of its
# own (SQLite; nh3, whose HTML parser interns names under a Rust mutex with the GIL released),
# and taken by every fork: a render worker forked (by the pool's thread, to replace one)
# while another thread held such a lock inherited it, held, and hung on its first use.
fork_guard = threading.RLock()
os.register_at_fork(
    before=fork_guard.acquire,
    after_in_parent=fork_guard.release,
    after_in_child=fork_guard.release,
)

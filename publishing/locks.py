"""The locks between the builder's threads and forks of its process."""

from __future__ import annotations

import os
import threading

from babel import localedata

# Held by a thread of the builder's process while it is inside code that takes locks of its
# own (SQLite; nh3, whose HTML parser interns names under a Rust mutex with the GIL released),
# and taken by every fork: a render worker forked (by the pool's thread, to replace one)
# while another thread held such a lock inherited it, held, and hung on its first use.
fork_guard = threading.RLock()

# Libraries' own locks that rendering takes, held by every fork too: Babel reads its locale
# data under one lock on every number or unit it formats, and a worker forked while the
# builder's thread was formatting a fact's value hung on its first one (at 100,000 products).
# Taken always in this order, after ``fork_guard``, so that two forks cannot deadlock.
LIBRARY_LOCKS = (localedata._cache_lock,)


def forks_hold() -> None:
    fork_guard.acquire()
    for lock in LIBRARY_LOCKS:
        lock.acquire()


def forks_release() -> None:
    for lock in reversed(LIBRARY_LOCKS):
        lock.release()
    fork_guard.release()


os.register_at_fork(before=forks_hold, after_in_parent=forks_release, after_in_child=forks_release)

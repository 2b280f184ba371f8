"""What a flow run does around its tasks in the store: the lock it takes, whether this process writes, and
the ``as_of`` labels its outputs are filed under.

Plain functions, not tasks: the lock is a context manager held for the whole run, and the others are
microsecond pure calls; a task run for each would cost API round trips and add nothing to the UI.
"""

from __future__ import annotations

from rnn_model.distribute import writes_results
from rnn_model.outputs import as_of_label, as_of_range
from rnn_model.store import store_lock

__all__ = ["store_lock", "writes_results", "as_of_label", "as_of_range"]

"""The result store: every read and write of the project goes through here (our catalog).

Stages in fer_core are pure functions of data; this module is the only place that
touches the file system. Writes are atomic (temporary file, then ``os.replace``) so a
crash never leaves a half-written result that a later run would trust. A run folder gets
copies of stored results, never links (``fer_core.store.publish``). Content keys of
stage results (``fer_core.store.keys``) live here too: where a result is stored is its key.

May import: numpy, pandas, OpenCV, matplotlib (writing figures), the standard library.
No other fer_core package.
"""

from fer_core.store.arrays import *  # noqa: F403
from fer_core.store.files import *  # noqa: F403
from fer_core.store.images import *  # noqa: F403
from fer_core.store.locks import *  # noqa: F403
from fer_core.store.publish import *  # noqa: F403
from fer_core.store.results import *  # noqa: F403

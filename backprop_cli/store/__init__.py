"""Everything on disk: atomic writes and locks (``files``), the NPZ reader (``npz``), the
weights file and its spec (``weights``), checkpoints (``checkpoint``), and the one reader
and writer of a run directory's metrics.csv and summary.json (``rundir``).

Nothing here trains or prints; every problem with a file is one BackpropError line.
"""

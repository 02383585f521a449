"""Training: the device and precision (``runtime``), batches (``data``), optimizer phases
(``phases``), run folders (``rundir``), what a run shows (``progress``) and the loop (``loop``).

Training imports storage and experiments, never the CLI or the Python API. Named ``training``
(not ``train``) so it never shadows the Python API's ``zoo.train()``.
"""

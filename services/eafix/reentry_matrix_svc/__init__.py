"""reentry-matrix-svc (8087): re-entry decisions after a trade closes, and the chain ledger O -> R1 -> R2.

Pure domain (no I/O, clock injected): `classify` (outcome by R-multiple, duration bucket), `matrix`
(the versioned decision matrix and its resolution ladder), `ledger` (chain caps, cooldown, rate
limits, duplicate guard, lot ordering) and `engine` (a closed trade in, a decision out).
"""

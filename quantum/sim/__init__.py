"""The quantum simulator in pure torch, one module per seam.

``gates`` (matrices, initial states), ``kernels`` (applying gates to batches of flat
states), ``statevector`` (exact fused simulation), ``channels`` (Kraus sets and the
per-gate noise model), ``density`` (density-matrix evolution), ``trajectories``
(quantum-jump Monte Carlo), ``measure`` (probabilities, expectations, readout error,
shots), ``gradients`` (parameter shift) and ``memory`` (the memory guard).
:mod:`physnn.quantum.functional` re-exports the public functions.
"""

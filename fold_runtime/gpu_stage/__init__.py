"""The GPU stage: memory policy, jax set-up, weights, prediction (with length-bucket padding),
ranking, relaxation and AlphaFold's output files. Importing this package imports no jax: the
memory policy must be applied before jax starts."""

"""Pure array-in/array-out numerical kernels (numba), one module per scorer; no I/O, specs or pandas."""

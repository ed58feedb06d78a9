// OpenBLAS (CBLAS interface) and LAPACKE. Only the Tensors module imports this.
#include <cblas.h>
#include <lapacke.h>
// Exported by OpenBLAS; declared here so that callers can bound its thread pool.
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);

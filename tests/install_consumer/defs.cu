// The program's one translation unit with the library's definitions (and kernels).
#define SIGATTN_DEFINE_API
#include <sigattn/sigattn.cuh>

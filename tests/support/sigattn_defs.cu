// The one translation unit of the test suite that compiles the library's definitions (and with
// them every kernel of the registry); test sources include <sigattn/api.hpp> and link this.
#define SIGATTN_DEFINE_API
#include <sigattn/sigattn.cuh>

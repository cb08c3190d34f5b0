// A host C++ translation unit (no nvcc) that includes the plain-C++ headers of a copy of include/.
// run.cmake compiles it twice: against the bare copy (no generated sigattn/version.hpp anywhere on
// the include path: api.hpp must fall back to sigattn/detail/version_default.hpp) and with the
// CMake-generated include directory first. Both must give project(sigattn VERSION ...).
#include <sigattn/api.hpp>
#include <sigattn/host/registry.hpp>
#include <sigattn/host/validate.hpp>
#include <sigattn/reference.hpp>

#if !defined(SIGATTN_EXPECT_MAJOR) || !defined(SIGATTN_EXPECT_MINOR) || \
    !defined(SIGATTN_EXPECT_PATCH) || !defined(SIGATTN_EXPECT_STRING)
#error "run.cmake passes the expected version as SIGATTN_EXPECT_{MAJOR,MINOR,PATCH,STRING}"
#endif

static_assert(SIGATTN_VERSION_MAJOR == SIGATTN_EXPECT_MAJOR, "major version differs from CMake's");
static_assert(SIGATTN_VERSION_MINOR == SIGATTN_EXPECT_MINOR, "minor version differs from CMake's");
static_assert(SIGATTN_VERSION_PATCH == SIGATTN_EXPECT_PATCH, "patch version differs from CMake's");
static_assert(SIGATTN_VERSION == SIGATTN_EXPECT_MAJOR * 10000 + SIGATTN_EXPECT_MINOR * 100 +
                                     SIGATTN_EXPECT_PATCH,
              "SIGATTN_VERSION differs from CMake's");

constexpr bool same_string(char const* a, char const* b) {
  return *a == *b && (*a == '\0' || same_string(a + 1, b + 1));
}
static_assert(same_string(SIGATTN_VERSION_STRING, SIGATTN_EXPECT_STRING),
              "SIGATTN_VERSION_STRING differs from CMake's");

// Which header supplied the macros: the bare copy has no generated one.
#if __has_include("sigattn/version.hpp") != SIGATTN_EXPECT_GENERATED
#error "sigattn/version.hpp is (or is not) on the include path, unlike what run.cmake set up"
#endif

bool vendored_host_valid() { return !sigattn::detail::validate(sigattn::FwdParams{}); }

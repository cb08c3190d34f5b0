// A host C++ translation unit (compiled by the C++ compiler, not nvcc) that uses the API.
#include <sigattn/api.hpp>

char const* consumer_version() { return SIGATTN_VERSION_STRING; }

size_t consumer_workspace_bytes() { return sigattn::workspace_bytes(sigattn::FwdParams{}); }

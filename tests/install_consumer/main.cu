// Prints a few answers of the host API; needs a GPU only for can_implement to say "success".
#include <sigattn/api.hpp>

#include <cstdio>

char const* consumer_version();
size_t consumer_workspace_bytes();

int main() {
  std::printf("sigattn %s\n", consumer_version());
  std::printf("to_string(kSuccess): %s\n", sigattn::to_string(sigattn::Status::kSuccess));
  sigattn::Result r = sigattn::can_implement(sigattn::FwdParams{}, 0);
  std::printf("can_implement(FwdParams{}, 0): %s\n", sigattn::to_string(r));
  std::printf("workspace_bytes(FwdParams{}): %zu\n", consumer_workspace_bytes());
  return 0;
}

#include "actors/sandbox_backend.hpp"

#include "actors/local_backend.hpp"

namespace codeexec {

std::unique_ptr<sandbox_backend> make_sandbox_backend(const config& cfg) {
  switch (cfg.backend) {
    case backend_kind::local:
      return std::make_unique<local_backend>(cfg);
    case backend_kind::e2b:
      break;
  }
  throw std::runtime_error("SANDBOX_BACKEND=e2b is not available in this version");
}

}  // namespace codeexec

#include "actors/sandbox_backend.hpp"

#include "actors/e2b_backend.hpp"
#include "actors/local_backend.hpp"

namespace codeexec {

std::unique_ptr<sandbox_backend> make_sandbox_backend(const config& cfg) {
  switch (cfg.backend) {
    case backend_kind::local:
      return std::make_unique<local_backend>(cfg);
    case backend_kind::e2b:
      return std::make_unique<e2b_backend>(cfg);
  }
  throw std::runtime_error("unknown SANDBOX_BACKEND");
}

}  // namespace codeexec

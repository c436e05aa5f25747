// The playground: a page to try code in (GET /) and its script and stylesheet
// (GET /playground/{file}), compiled in (http/embedded.hpp). It calls the public API
// like any client. PLAYGROUND (config) decides who gets it.
#pragma once

#include <optional>
#include <string_view>

namespace codeexec::http::playground {

struct asset {
  std::string_view body;
  std::string_view content_type;
};

/// The page ("") or an asset by file name; nullopt for any other name.
std::optional<asset> find(std::string_view file);

/// Whether PLAYGROUND=`setting` serves the playground to a client (loopback or not).
bool serves(std::string_view setting, bool loopback_client);

}  // namespace codeexec::http::playground

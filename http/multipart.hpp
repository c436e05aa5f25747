// multipart/form-data bodies (RFC 7578), as the E2B SDK uploads files: one part
// per file, named "file", its target path as the filename.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace codeexec::http {

struct multipart_part {
  std::string name;       ///< Content-Disposition name
  std::string filename;   ///< Content-Disposition filename ("" if none)
  std::string_view body;  ///< the part's bytes, a view into the parsed body
};

/// The boundary parameter of a multipart Content-Type, if it is one.
std::optional<std::string> multipart_boundary(std::string_view content_type);

/// The parts of `body`; nothing when it is not well-formed multipart with `boundary`.
std::optional<std::vector<multipart_part>> parse_multipart(std::string_view body,
                                                           std::string_view boundary);

}  // namespace codeexec::http

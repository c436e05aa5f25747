// Why the service ends a cell early, shared by the SANDBOX actors of both backends:
// the first reason decided wins, and every answer given afterwards reports it.
#pragma once

#include "actors/messages.hpp"

#include <optional>
#include <string>

namespace codeexec {

struct stop_reason {
  cell_end how = cell_end::killed;
  std::string detail;
};

/// Records `how` and `detail` as the cell's stop reason unless it already has one.
inline void decide_stop(std::optional<stop_reason>& reason, cell_end how, std::string detail) {
  if (!reason) reason = stop_reason{how, std::move(detail)};
}

/// The outcome of a cell answered now: its stop reason if the service decided one,
/// else `how` and `detail` (how the sandbox or kernel ended under it).
inline cell_outcome ended_cell(const std::optional<stop_reason>& reason, cell_end how,
                               const std::string& detail) {
  cell_outcome out;
  out.how = reason ? reason->how : how;
  out.detail = reason ? reason->detail : detail;
  return out;
}

}  // namespace codeexec

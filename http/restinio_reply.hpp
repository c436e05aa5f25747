// Plain replies through RESTinio: the status line of a status code, and a `reply`
// (http/server.hpp) sent whole. Included only by restinio_server.cpp, the one RESTinio
// translation unit (RESTinio dominates build time).
#pragma once

#include "http/server.hpp"

#include <restinio/all.hpp>

#include <cstdint>

namespace codeexec::http {

/// The status line of `status`, with its standard reason phrase.
inline restinio::http_status_line_t status_line(int status) {
  const char* reason = "OK";
  switch (status) {
    case 200:
      reason = "OK";
      break;
    case 204:
      reason = "No Content";
      break;
    case 400:
      reason = "Bad Request";
      break;
    case 401:
      reason = "Unauthorized";
      break;
    case 403:
      reason = "Forbidden";
      break;
    case 404:
      reason = "Not Found";
      break;
    case 405:
      reason = "Method Not Allowed";
      break;
    case 409:
      reason = "Conflict";
      break;
    case 410:
      reason = "Gone";
      break;
    case 413:
      reason = "Payload Too Large";
      break;
    case 415:
      reason = "Unsupported Media Type";
      break;
    case 429:
      reason = "Too Many Requests";
      break;
    case 501:
      reason = "Not Implemented";
      break;
    case 502:
      reason = "Bad Gateway";
      break;
    case 503:
      reason = "Service Unavailable";
      break;
    default:
      reason = status < 400 ? "OK" : "Error";
      break;
  }
  return restinio::http_status_line_t{
      restinio::http_status_code_t{static_cast<std::uint16_t>(status)}, reason};
}

/// Sends `r` as the whole response to `req`.
inline void send_reply(const restinio::request_handle_t& req, const reply& r) {
  auto response = req->create_response(status_line(r.status));
  response.append_header(restinio::http_field::content_type, r.content_type);
  for (const auto& [name, value] : r.headers) response.append_header(name, value);
  response.set_body(r.body);
  response.done();
}

}  // namespace codeexec::http

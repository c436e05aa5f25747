# R kernel: runs cells in the global environment (see PROTOCOL.md).
#
# Started as `Rscript --vanilla r_runner.R`. Requests arrive on fd 3, events
# leave on fd 4: 4-byte big-endian length, then UTF-8 JSON. Base R only (no
# jsonlite), so a small JSON reader and writer are included.
#
# R has no connection on a numbered descriptor, and /proc/self/fd/N cannot be
# opened when the fd is a socket, so the frames travel through two `cat`
# processes: pipe("exec cat <&3") and pipe("exec cat >&4").
#
# Output: each top-level expression of a cell runs with stdout and the message
# stream sunk into files, whose bytes are sent as stdout/stderr events when the
# expression ends (R has no threads or timers to stream them earlier).
# Visible values of top-level expressions are printed as at R's prompt, except
# the last one's, which is the cell's main result.

local({
  MAX_FRAME <- 64 * 1024 * 1024
  MAX_TEXT <- 1024 * 1024
  HOME <- "/home/user"

  requests <- pipe("exec cat <&3", "rb")
  events <- pipe("exec cat >&4", "wb")

  # ---- JSON -------------------------------------------------------------------

  utf8 <- function(s) {
    s <- enc2utf8(as.character(s))
    bad <- !validUTF8(s)
    if (any(bad)) s[bad] <- iconv(s[bad], "UTF-8", "UTF-8", sub = "\uFFFD")
    s
  }

  json_string <- function(s) {
    s <- utf8(s)
    s <- gsub("\\", "\\\\", s, fixed = TRUE)
    s <- gsub("\"", "\\\"", s, fixed = TRUE)
    s <- gsub("\n", "\\n", s, fixed = TRUE)
    s <- gsub("\r", "\\r", s, fixed = TRUE)
    s <- gsub("\t", "\\t", s, fixed = TRUE)
    if (grepl("[\001-\037]", s, perl = TRUE)) {
      m <- gregexpr("[\001-\037]", s, perl = TRUE)
      regmatches(s, m) <- list(sprintf("\\u%04x", utf8ToInt(paste(regmatches(s, m)[[1]], collapse = ""))))
    }
    paste0("\"", s, "\"")
  }

  json_value <- function(v) {
    if (is.null(v)) return("null")
    if (is.list(v)) {
      if (length(v) == 0) return("{}")
      keys <- names(v)
      parts <- vapply(seq_along(v), function(i) paste0(json_string(keys[[i]]), ":", json_value(v[[i]])), "")
      return(paste0("{", paste(parts, collapse = ","), "}"))
    }
    if (is.logical(v)) return(if (isTRUE(v)) "true" else "false")
    if (is.numeric(v)) return(format(v, scientific = FALSE))
    json_string(v)
  }

  json_parse <- function(text) {
    pos <- 1L
    n <- nchar(text)
    fail <- function(what) stop(sprintf("%s at offset %d", what, pos - 1L), call. = FALSE)
    space <- function() {
      while (pos <= n && substr(text, pos, pos) %in% c(" ", "\t", "\n", "\r")) pos <<- pos + 1L
    }
    unescape <- function(s) {
      if (!grepl("\\", s, fixed = TRUE)) return(s)
      m <- gregexpr("\\\\(?:u[dD][89abAB][0-9a-fA-F]{2}\\\\u[dD][c-fC-F][0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|.)", s,
                    perl = TRUE)
      escapes <- regmatches(s, m)[[1]]
      replace <- vapply(escapes, function(e) {
        c2 <- substr(e, 2, 2)
        if (c2 != "u") {
          r <- switch(c2, "\"" = "\"", "\\" = "\\", "/" = "/", b = "\b", f = "\f", n = "\n", r = "\r",
                      t = "\t", NA_character_)
          if (is.na(r)) fail("bad escape")
          return(r)
        }
        codes <- strtoi(regmatches(e, gregexpr("[0-9a-fA-F]{4}", e))[[1]], 16L)
        if (length(codes) == 2) return(intToUtf8(0x10000 + (codes[1] - 0xD800) * 1024 + (codes[2] - 0xDC00)))
        if (codes >= 0xD800 && codes <= 0xDFFF) return("\uFFFD") # lone surrogate
        if (codes == 0) fail("NUL in a string")
        intToUtf8(codes)
      }, "", USE.NAMES = FALSE)
      regmatches(s, m) <- list(replace)
      s
    }
    parse_string <- function() {
      rest <- substr(text, pos, n)
      m <- regexpr("^\"(?:[^\"\\\\\001-\037]++|\\\\.)*+\"", rest, perl = TRUE)
      if (m < 0) fail("bad string")
      len <- attr(m, "match.length")
      pos <<- pos + len
      unescape(substr(rest, 2L, len - 1L))
    }
    parse_value <- function() {
      space()
      if (pos > n) fail("unexpected end")
      c1 <- substr(text, pos, pos)
      if (c1 == "{") {
        pos <<- pos + 1L
        out <- list()
        keys <- character()
        space()
        if (substr(text, pos, pos) == "}") {
          pos <<- pos + 1L
          return(structure(list(), names = character()))
        }
        repeat {
          space()
          if (substr(text, pos, pos) != "\"") fail("expected a key")
          key <- parse_string()
          space()
          if (substr(text, pos, pos) != ":") fail("expected ':'")
          pos <<- pos + 1L
          value <- parse_value()
          out[length(out) + 1L] <- list(value)
          keys <- c(keys, key)
          space()
          c2 <- substr(text, pos, pos)
          pos <<- pos + 1L
          if (c2 == ",") next
          if (c2 == "}") break
          fail("expected ',' or '}'")
        }
        names(out) <- keys
        return(out)
      }
      if (c1 == "[") {
        pos <<- pos + 1L
        out <- list()
        space()
        if (substr(text, pos, pos) == "]") {
          pos <<- pos + 1L
          return(out)
        }
        repeat {
          out[length(out) + 1L] <- list(parse_value())
          space()
          c2 <- substr(text, pos, pos)
          pos <<- pos + 1L
          if (c2 == ",") next
          if (c2 == "]") break
          fail("expected ',' or ']'")
        }
        return(structure(out, json_array = TRUE))
      }
      if (c1 == "\"") return(parse_string())
      for (literal in c("true", "false", "null")) {
        if (substr(text, pos, pos + nchar(literal) - 1L) == literal) {
          pos <<- pos + nchar(literal)
          return(switch(literal, true = TRUE, false = FALSE, null = NULL))
        }
      }
      m <- regexpr("^-?[0-9]+(\\.[0-9]+)?([eE][-+]?[0-9]+)?", substr(text, pos, min(n, pos + 400L)), perl = TRUE)
      if (m < 0) fail("unexpected character")
      len <- attr(m, "match.length")
      value <- as.numeric(substr(text, pos, pos + len - 1L))
      pos <<- pos + len
      value
    }
    value <- parse_value()
    space()
    if (pos <= n) fail("trailing characters")
    value
  }

  # ---- frames -------------------------------------------------------------------

  send <- function(event) {
    payload <- charToRaw(enc2utf8(json_value(event)))
    if (length(payload) > MAX_FRAME && identical(event$type, "result")) {
      event <- list(type = "result", extra = structure(list(), names = character()),
                    text = sprintf("<result of %d bytes not sent: larger than the 64 MiB frame limit>", length(payload)),
                    is_main_result = event$is_main_result)
      payload <- charToRaw(json_value(event))
    }
    ok <- tryCatch({
      writeBin(length(payload), events, size = 4L, endian = "big")
      writeBin(payload, events)
      flush(events)
      TRUE
    }, error = function(e) FALSE)
    if (!ok) quit(save = "no", status = 1) # the host closed the event channel
  }

  send_text <- function(stream, text) {
    while (nchar(text) > 0) {
      chunk <- substr(text, 1L, MAX_TEXT)
      send(list(type = stream, text = chunk))
      text <- substr(text, MAX_TEXT + 1L, nchar(text))
    }
  }

  # Reads n bytes; NULL at end of file.
  read_exact <- function(n) {
    parts <- list()
    got <- 0
    while (got < n) {
      chunk <- readBin(requests, "raw", min(n - got, 1048576))
      if (length(chunk) == 0) return(NULL)
      parts[[length(parts) + 1L]] <- chunk
      got <- got + length(chunk)
    }
    if (length(parts) == 1) parts[[1]] else do.call(c, parts)
  }

  # ---- cells --------------------------------------------------------------------

  execution_count <- 0L
  scratch <- tempfile("r-runner-")
  dir.create(scratch, mode = "0700")
  out_file <- file.path(scratch, "stdout")
  err_file <- file.path(scratch, "stderr")

  protocol_error <- function(message, id) {
    send(list(type = "error", name = "ProtocolError", value = message, traceback = ""))
    send(list(type = "end", id = id, status = "error", execution_count = execution_count))
  }

  read_all <- function(path) {
    size <- file.size(path)
    if (is.na(size) || size == 0) return("")
    text <- rawToChar(readBin(path, "raw", size))
    Encoding(text) <- "UTF-8"
    utf8(text)
  }

  # Runs `f` with stdout and messages going to files; sends what they got.
  with_output <- function(f) {
    out <- file(out_file, "w")
    err <- file(err_file, "w")
    sink(out)
    sink(err, type = "message")
    on.exit({
      sink(type = "message")
      sink()
      close(out)
      close(err)
      send_text("stdout", read_all(out_file))
      send_text("stderr", read_all(err_file))
    })
    f()
  }

  format_value <- function(value) {
    paste(utils::capture.output(print(value)), collapse = "\n")
  }

  traceback_of <- function(calls, condition) {
    # calls: sys.calls() when the condition was signalled. The cell's frames are
    # those after the runner's eval(); the last ones are the signalling machinery.
    texts <- vapply(calls, function(call) paste(deparse(call, nlines = 1L, width.cutoff = 200L), collapse = ""), "")
    start <- max(c(0L, which(texts == "eval(exprs[[i]], globalenv())")))
    keep <- if (start > 0) texts[(start + 1L):length(texts)] else character()
    keep <- keep[!grepl("^(h|handler)\\(simpleError|^\\.handleSimpleError\\(|^stop\\(|^\\(function \\(e\\)", keep)]
    call <- conditionCall(condition)
    header <- if (is.null(call)) sprintf("Error: %s", conditionMessage(condition)) else
      sprintf("Error in %s : %s", paste(deparse(call, nlines = 1L), collapse = ""), conditionMessage(condition))
    lines <- if (length(keep)) paste0(rev(seq_along(keep)), ": ", rev(keep)) else character()
    paste(c(header, lines), collapse = "\n")
  }

  run_cell <- function(id, code, env) {
    execution_count <<- execution_count + 1L
    saved <- Sys.getenv(names(env), unset = NA, names = TRUE)
    if (length(env)) do.call(Sys.setenv, env)
    error <- NULL
    result <- NULL
    interrupted <- FALSE
    # The runner runs with interrupts suspended (a SIGINT between cells must
    # not stop runner code half-way); one left pending since is dropped here.
    tryCatch(allowInterrupts(Sys.sleep(0)), interrupt = function(e) NULL)
    exprs <- tryCatch(parse(text = code, keep.source = FALSE, srcfile = NULL), error = function(e) e)
    if (inherits(exprs, "error")) {
      message <- sub("^<text>:", sprintf("cell-%d:", execution_count), conditionMessage(exprs))
      error <- list(type = "error", name = "ParseError", value = message, traceback = message)
      exprs <- expression()
    }
    for (i in seq_along(exprs)) {
      calls <- NULL
      outcome <- with_output(function() tryCatch(
        withCallingHandlers(
          withVisible(allowInterrupts(eval(exprs[[i]], globalenv()))),
          error = function(e) calls <<- sys.calls(),
          warning = function(w) {
            call <- conditionCall(w)
            where <- if (is.null(call)) "" else paste0(" in ", paste(deparse(call, nlines = 1L), collapse = ""))
            if (identical(where, " in eval(exprs[[i]], globalenv())")) where <- "" # the cell's top level
            message(sprintf("Warning message%s:\n%s", where, conditionMessage(w)))
            invokeRestart("muffleWarning")
          }),
        error = function(e) structure(list(condition = e), class = "runner_error"),
        interrupt = function(e) structure(list(), class = "runner_interrupt")))
      if (inherits(outcome, "runner_interrupt")) {
        interrupted <- TRUE
        error <- list(type = "error", name = "Interrupted", value = "Execution was interrupted by SIGINT",
                      traceback = "")
        break
      }
      if (inherits(outcome, "runner_error")) {
        e <- outcome$condition
        error <- list(type = "error", name = class(e)[1], value = conditionMessage(e),
                      traceback = traceback_of(if (is.null(calls)) list() else calls, e))
        break
      }
      if (!outcome$visible) next
      if (i == length(exprs)) {
        text <- with_output(function() format_value(outcome$value))
        result <- list(type = "result", text = text, extra = structure(list(), names = character()),
                       is_main_result = TRUE)
      } else {
        with_output(function() print(outcome$value))
      }
    }
    for (key in names(saved)) {
      if (is.na(saved[[key]])) Sys.unsetenv(key) else do.call(Sys.setenv, structure(list(saved[[key]]), names = key))
    }
    status <- "ok"
    if (!is.null(error)) {
      status <- if (interrupted) "interrupted" else "error"
      send(error)
    } else if (!is.null(result)) {
      send(result)
    }
    send(list(type = "end", id = id, status = status, execution_count = execution_count))
  }

  valid_env_name <- function(key) nzchar(key) && !grepl("=", key, fixed = TRUE)

  handle <- function(payload) {
    text <- tryCatch({
      t <- rawToChar(payload)
      Encoding(t) <- "UTF-8"
      if (!validUTF8(t)) stop("invalid UTF-8", call. = FALSE)
      t
    }, error = function(e) e)
    request <- if (inherits(text, "error")) text else tryCatch(json_parse(text), error = function(e) e)
    if (inherits(request, "error")) {
      return(protocol_error(paste("request is not valid JSON:", conditionMessage(request)), ""))
    }
    if (!is.list(request) || !is.null(attr(request, "json_array")) || (length(request) && is.null(names(request)))) {
      return(protocol_error("request is not a JSON object", ""))
    }
    id <- if (is.character(request$id) && length(request$id) == 1) request$id else ""
    op <- request$op
    if (identical(op, "shutdown")) shutdown()
    if (!identical(op, "exec")) return(protocol_error(paste("unknown op", json_value(op)), id))
    if (!(is.character(request$id) && length(request$id) == 1)) return(protocol_error("exec needs a string id", id))
    if (!(is.character(request$code) && length(request$code) == 1)) {
      return(protocol_error("exec needs a string code", id))
    }
    stdin <- request$stdin
    if (!is.null(stdin) && !(is.character(stdin) && length(stdin) == 1 && startsWith(stdin, "/"))) {
      return(protocol_error("stdin must be an absolute path without NUL", id))
    }
    env <- request$env
    if (is.null(env)) env <- list()
    if (!is.list(env) || !is.null(attr(env, "json_array")) || (length(env) && is.null(names(env)))) {
      return(protocol_error("env must be an object", id))
    }
    for (key in names(env)) {
      if (!(is.character(env[[key]]) && length(env[[key]]) == 1)) {
        return(protocol_error(sprintf("env value of %s is not a string", json_string(key)), id))
      }
      if (!valid_env_name(key)) return(protocol_error(sprintf("invalid environment variable %s", json_string(key)), id))
    }
    if (!is.null(stdin)) {
      # R cannot put a file on its fd 0; the FIFO is only taken out of the way (PROTOCOL.md).
      if (!file.exists(stdin) || dir.exists(stdin)) {
        return(protocol_error(sprintf("cannot open stdin %s: no such FIFO", json_string(stdin)), id))
      }
      unlink(stdin)
    }
    run_cell(request$id, request$code, env)
  }

  shutdown <- function() {
    unlink(scratch, recursive = TRUE)
    quit(save = "no", status = 0)
  }

  if (dir.exists(HOME)) setwd(HOME)
  version <- paste(R.version$major, R.version$minor, sep = ".")
  send(list(type = "ready", language = "r", version = version, pid = Sys.getpid()))
  suspendInterrupts(repeat {
    header <- read_exact(4)
    if (is.null(header)) break
    size <- sum(as.numeric(as.integer(header)) * c(16777216, 65536, 256, 1))
    if (size > MAX_FRAME) {
      left <- size
      while (left > 0) {
        chunk <- read_exact(min(left, 1048576))
        if (is.null(chunk)) shutdown()
        left <- left - length(chunk)
      }
      protocol_error("request frame larger than 64 MiB", "")
      next
    }
    payload <- if (size == 0) raw(0) else read_exact(size)
    if (is.null(payload)) break
    handle(payload)
  })
  shutdown()
})

# Compiles a file into the binary as `const std::string_view codeexec::embedded::NAME`
# (declared in http/embedded.hpp). A byte array, not a string literal: -Wpedantic
# warns about literals over 64 KiB. Run as a script:
#   cmake -DINPUT=file -DOUTPUT=file.cpp -DNAME=symbol -P cmake/embed.cmake
file(READ "${INPUT}" hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REGEX REPLACE "((0x..,){32})" "\\1\n" bytes "${bytes}")
file(WRITE "${OUTPUT}.tmp"
  "// Generated from ${INPUT} by cmake/embed.cmake; do not edit.\n"
  "#include \"http/embedded.hpp\"\n\n"
  "namespace codeexec::embedded {\n"
  "namespace {\n"
  "const unsigned char bytes[] = {\n${bytes}0};\n"
  "}  // namespace\n"
  "const std::string_view ${NAME}{reinterpret_cast<const char*>(bytes), sizeof bytes - 1};\n"
  "}  // namespace codeexec::embedded\n")
file(COPY_FILE "${OUTPUT}.tmp" "${OUTPUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUTPUT}.tmp")

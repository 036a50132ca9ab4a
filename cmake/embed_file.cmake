# Writes a C++ source file holding the bytes of one file as a std::string_view, so that a
# page or script kept as its own file (.html, .js) is compiled into the binary.
#   cmake -DINPUT=<file> -DOUTPUT=<file.cc> -DSYMBOL=<name> -DNAMESPACE=<ns> -P embed_file.cmake
# The bytes are written as hex (no escaping rules, any content); a NUL follows them.
foreach(var INPUT OUTPUT SYMBOL NAMESPACE)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "embed_file.cmake: ${var} is not set")
  endif()
endforeach()
file(READ "${INPUT}" hex HEX)
string(LENGTH "${hex}" hex_len)
math(EXPR size "${hex_len} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
get_filename_component(name "${INPUT}" NAME)
file(WRITE "${OUTPUT}.tmp"
  "// Generated from ${name} by cmake/embed_file.cmake at build time. Do not edit.\n"
  "#include <string_view>\n\n"
  "namespace ${NAMESPACE} {\n"
  "namespace {\n"
  "const unsigned char kBytes[] = {\n    ${bytes}0x00};\n"
  "}  // namespace\n"
  "extern const std::string_view ${SYMBOL};\n"
  "const std::string_view ${SYMBOL}(reinterpret_cast<const char*>(kBytes), ${size});\n"
  "}  // namespace ${NAMESPACE}\n")
# Only a changed file is rewritten (no rebuild when the asset did not change).
execute_process(COMMAND ${CMAKE_COMMAND} -E copy_if_different "${OUTPUT}.tmp" "${OUTPUT}")
file(REMOVE "${OUTPUT}.tmp")

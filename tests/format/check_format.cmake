# Fails when a project source file is not formatted as .clang-format says.
# Usage: cmake -DCLANG_FORMAT=clang-format -DSOURCE_DIR=<repo> -P check_format.cmake
file(GLOB_RECURSE sources
  "${SOURCE_DIR}/modules/*.cpp" "${SOURCE_DIR}/modules/*.hpp" "${SOURCE_DIR}/modules/*.cu"
  "${SOURCE_DIR}/crossval/*.cpp" "${SOURCE_DIR}/crossval/*.hpp"
  "${SOURCE_DIR}/apps/*.cpp" "${SOURCE_DIR}/apps/*.hpp"
  "${SOURCE_DIR}/tools/*.cpp" "${SOURCE_DIR}/tools/*.hpp"
  "${SOURCE_DIR}/tests/*.cpp" "${SOURCE_DIR}/tests/*.hpp" "${SOURCE_DIR}/bench/*.cpp")
list(FILTER sources EXCLUDE REGEX "violation_fixture")
execute_process(COMMAND ${CLANG_FORMAT} --dry-run --Werror ${sources} RESULT_VARIABLE result ERROR_VARIABLE errors)
if(NOT result EQUAL 0)
  message(FATAL_ERROR "clang-format found unformatted code (run clang-format -i on these files):\n${errors}")
endif()

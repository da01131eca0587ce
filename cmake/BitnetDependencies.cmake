# Every dependency comes from a Debian package (scripts/install-deps.sh); nothing is downloaded.
find_package(Threads REQUIRED)
find_package(OpenMP REQUIRED COMPONENTS CXX)
find_package(nlohmann_json 3 REQUIRED)
find_package(spdlog REQUIRED)
find_package(CLI11 REQUIRED)
find_package(CURL REQUIRED)
find_package(Eigen3 REQUIRED NO_MODULE)
if(BITNET_BUILD_TESTS)
  find_package(Catch2 2 REQUIRED)
  include(Catch)
endif()
find_package(benchmark QUIET)

# cpp-httplib ships a header plus a compiled library in Debian 12.
find_path(HTTPLIB_INCLUDE_DIR httplib.h REQUIRED)
find_library(HTTPLIB_LIBRARY cpp-httplib REQUIRED)
add_library(bitnet_httplib INTERFACE)
target_include_directories(bitnet_httplib SYSTEM INTERFACE ${HTTPLIB_INCLUDE_DIR})
target_link_libraries(bitnet_httplib INTERFACE ${HTTPLIB_LIBRARY} Threads::Threads)

# A module library: bitnet_<name> with alias bitnet::<name>, public headers in include/.
function(bitnet_add_module name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(bitnet_${name} STATIC ${ARG_SOURCES})
  add_library(bitnet::${name} ALIAS bitnet_${name})
  target_include_directories(bitnet_${name} PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/include
                                            PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/src)
  target_link_libraries(bitnet_${name} PUBLIC ${ARG_DEPS} PRIVATE ${ARG_PRIVATE_DEPS})
  bitnet_set_warnings(bitnet_${name})
endfunction()

# Catch2's main() is compiled once (it is the slowest file of the build) and shared.
if(BITNET_BUILD_TESTS)
  add_library(bitnet_catch_main STATIC ${PROJECT_SOURCE_DIR}/tests/support/catch_main.cpp)
  target_link_libraries(bitnet_catch_main PUBLIC Catch2::Catch2)
endif()

# A Catch2 test executable registered with CTest under the given labels.
function(bitnet_add_test name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS;LABELS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} bitnet_catch_main)
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/tests/support)
  target_compile_definitions(${name} PRIVATE
    BITNET_SHARED_DIR="${BITNET_SHARED_DIR}" BITNET_BINARY_DIR="${PROJECT_BINARY_DIR}")
  bitnet_set_warnings(${name})
  if(NOT ARG_LABELS)
    set(ARG_LABELS unit)
  endif()
  catch_discover_tests(${name} PROPERTIES LABELS "${ARG_LABELS}")
endfunction()

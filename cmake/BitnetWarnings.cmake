# Warnings are errors on project code (never on third-party headers, which come in as SYSTEM).
function(bitnet_set_warnings target)
  target_compile_options(${target} PRIVATE
    $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor
      -Wcast-align -Wunused -Woverloaded-virtual -Wformat=2 -Wimplicit-fallthrough -Werror>
    $<$<COMPILE_LANGUAGE:CUDA>:-Werror=all-warnings>)
  # GCC 12 reports false -Wrestrict positives inside libstdc++'s std::string at -O3
  # (GCC bug 105329); the warning stays on for other compilers.
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
    target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:-Wno-restrict>)
  endif()
endfunction()

# The asan preset turns on BITNET_SANITIZE: ASan + UBSan for every target, UB reports fatal.
if(BITNET_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
endif()

# The fuzz preset (clang) instruments every library for libFuzzer's coverage feedback; the
# fuzz targets themselves link the libFuzzer driver.
option(BITNET_FUZZ "Instrument libraries for libFuzzer (clang only)" OFF)
if(BITNET_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "BITNET_FUZZ needs clang (use the fuzz preset)")
  endif()
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
endif()

# The asan preset turns this on: ASan + UBSan for every target, UB reports are fatal.
if(BITNET_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
endif()

// <immintrin.h> for the files that use AVX-512 intrinsics. GCC 12 flags the _mm512_undefined_*
// values inside its own AVX-512 headers (reached from casts and 256-bit extracts) as
// (maybe-)uninitialized: a false positive, those lanes are always overwritten. The warnings are
// turned off for the including file only, which is why this header is included first and only
// from .cpp files.
#pragma once

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

#include <immintrin.h>

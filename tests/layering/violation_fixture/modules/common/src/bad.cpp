// Deliberate violation for the layering checker's own test: common must not include models.
#include "bitnet/models/gguf_file.hpp"

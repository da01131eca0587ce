// Deep checks of a model file beyond the container: architecture config, tensor roles and
// types, and per-tensor content (I2_S scale finite, codes valid, ternary fractions, finite
// norms). `bitnet validate` prints this report; nothing here modifies or copies the file.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bitnet/models/gguf_file.hpp"

namespace bitnet::models {

struct TensorStats {
    std::string name;
    std::string type;
    bool checked = false;       // content was inspected (type understood)
    double zero_fraction = -1;  // ternary tensors: fraction of 0 weights
    double scale = 0;           // I2_S: the per-tensor scale
};

struct Finding {
    bool fatal;         // true: the file cannot be used; false: a warning
    std::string where;  // tensor or key
    std::string message;
};

struct FileReport {
    std::vector<Finding> findings;
    std::vector<TensorStats> tensors;
    bool ok() const;
    // The first fatal finding as one line ("<where>: <message>"), "" when ok.
    std::string first_problem() const;
};

// strict: also turn warnings (zero scales, unusual ternary fractions) into failures.
FileReport check_model_file(const GgufFile& file, bool strict);

}  // namespace bitnet::models

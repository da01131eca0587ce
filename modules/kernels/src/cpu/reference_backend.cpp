// The reference backend: one thread, plain loops, the exact numerics of backend.hpp. It is the
// oracle every other backend is compared with, so it favours obviousness over speed.
#include "bitnet/common/error.hpp"
#include "bitnet/kernels/backend.hpp"
#include "bitnet/quantization/formats.hpp"
#include "matmul_common.hpp"

namespace bitnet::kernels {
namespace {

class ReferenceBackend final : public Backend {
  public:
    explicit ReferenceBackend(ActivationPrecision precision)
        : int8_(precision == ActivationPrecision::Int8) {}

    void matmul(const WeightView& w, const float* x, std::int64_t n_rows, float* y) const override {
        detail::PreparedRow prepared;
        for (std::int64_t r = 0; r < n_rows; ++r) {
            detail::prepare_row(w, x + r * w.cols, int8_, prepared);
            for (std::int64_t n = 0; n < w.rows; ++n)
                y[r * w.rows + n] = detail::dot_row_reference(w, n, prepared, int8_);
        }
    }

    void get_row(const WeightView& w, std::int64_t index, float* out) const override {
        if (index < 0 || index >= w.rows)
            fail(ErrorCode::InvalidArgument, "row " + std::to_string(index) +
                                                 " outside a matrix of " + std::to_string(w.rows) +
                                                 " rows");
        const std::uint8_t* row = w.row(index);
        if (w.type == quant::TypeId::I2_S) {
            for (std::int64_t i = 0; i < w.cols; ++i)
                out[i] = static_cast<float>(quant::i2s_code_at(row, i) - 1) * w.scale;
            return;
        }
        const quant::TypeTraits& t = quant::traits(w.type);
        if (!t.dequantize)
            fail(ErrorCode::Unsupported, "cannot read rows of type " + std::string(t.name));
        t.dequantize(row, w.cols, out);
    }

    std::string name() const override {
        return int8_ ? "reference" : "reference-float-activations";
    }
    std::vector<std::string> kernel_names() const override { return {name() + ": scalar loops"}; }

  private:
    bool int8_;
};

}  // namespace

std::unique_ptr<Backend> make_reference_backend(ActivationPrecision precision) {
    return std::make_unique<ReferenceBackend>(precision);
}

}  // namespace bitnet::kernels

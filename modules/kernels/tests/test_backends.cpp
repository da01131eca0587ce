#include <catch2/catch.hpp>

#include <cmath>
#include <random>
#include <vector>

#include "bitnet/common/cpu_features.hpp"
#include "bitnet/common/error.hpp"
#include "bitnet/kernels/backend.hpp"
#include "bitnet/quantization/activation.hpp"
#include "bitnet/quantization/formats.hpp"
#include "bitnet/quantization/type_traits.hpp"

using namespace bitnet;
using quant::TypeId;

namespace {

struct Matrix {
    std::vector<std::uint8_t> bytes;
    kernels::WeightView view;
    std::vector<float> values;  // the exact weights, row-major
};

Matrix ternary_matrix(TypeId type, std::int64_t rows, std::int64_t cols, std::uint32_t seed) {
    std::mt19937 rng(seed);
    Matrix m;
    m.values.resize(static_cast<std::size_t>(rows * cols));
    const float s = 0.125f;
    for (auto& v : m.values) v = s * static_cast<float>(static_cast<int>(rng() % 3) - 1);
    m.values[0] = s;
    const quant::TypeTraits& t = quant::traits(type);
    m.bytes.resize(quant::tensor_bytes(t, m.values.size()));
    t.quantize(m.values.data(), static_cast<std::int64_t>(m.values.size()), m.bytes.data());
    m.view = {type, m.bytes.data(), rows, cols, type == TypeId::I2_S ? s : 1.0f};
    return m;
}

std::vector<float> random_activations(std::int64_t n, std::uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> dist(0.0f, 1.0f);
    std::vector<float> x(static_cast<std::size_t>(n));
    for (auto& v : x) v = dist(rng);
    return x;
}

// Every combination of the shapes, random I2_S weights and activations: `cpu` gives the reference
// backend's bits.
void check_i2s_shapes(const kernels::Backend& cpu, std::initializer_list<std::int64_t> widths,
                      std::initializer_list<std::int64_t> heights,
                      std::initializer_list<std::int64_t> token_counts, std::uint32_t seed) {
    auto reference = kernels::make_reference_backend();
    for (std::int64_t cols : widths)
        for (std::int64_t rows : heights)
            for (std::int64_t tokens : token_counts) {
                const Matrix w = ternary_matrix(TypeId::I2_S, rows, cols, ++seed);
                const auto x = random_activations(tokens * cols, ++seed);
                std::vector<float> a(static_cast<std::size_t>(tokens * rows)), b(a.size());
                reference->matmul(w.view, x.data(), tokens, a.data());
                cpu.matmul(w.view, x.data(), tokens, b.data());
                INFO(cpu.kernel_names()[0] << ": " << rows << "x" << cols << " x " << tokens
                                           << " tokens");
                REQUIRE(a == b);
            }
}

}  // namespace

TEST_CASE("ternary matmul follows the W1.58A8 rule exactly (hand-written integer check)") {
    for (TypeId type : {TypeId::I2_S, TypeId::TQ2_0, TypeId::TQ1_0}) {
        const std::int64_t rows = 5, cols = 512;
        const Matrix w = ternary_matrix(type, rows, cols, 9);
        const auto x = random_activations(cols * 2, 4);
        std::vector<float> y(static_cast<std::size_t>(rows * 2));
        kernels::make_reference_backend()->matmul(w.view, x.data(), 2, y.data());
        for (std::int64_t r = 0; r < 2; ++r) {
            std::vector<std::int8_t> q(static_cast<std::size_t>(cols));
            const auto act = quant::quantize_activations_i8(x.data() + r * cols, cols, q.data());
            for (std::int64_t n = 0; n < rows; ++n) {
                // Independent: ternary values t in {-1,0,1}: y = s * sum(t*q) / a.
                std::int64_t dot = 0;
                for (std::int64_t k = 0; k < cols; ++k)
                    dot += static_cast<std::int64_t>(std::lround(
                               w.values[static_cast<std::size_t>(n * cols + k)] / 0.125f)) *
                           q[static_cast<std::size_t>(k)];
                const double expected = 0.125 * static_cast<double>(dot) / act.scale;
                CHECK(y[static_cast<std::size_t>(r * rows + n)] ==
                      Approx(expected).epsilon(1e-5).margin(1e-6));
            }
        }
    }
}

TEST_CASE("float-activation matmul equals the float dot product of the dequantized weights") {
    const Matrix w = ternary_matrix(TypeId::I2_S, 7, 256, 2);
    const auto x = random_activations(256, 3);
    std::vector<float> y(7);
    kernels::make_reference_backend(kernels::ActivationPrecision::Float)
        ->matmul(w.view, x.data(), 1, y.data());
    for (std::int64_t n = 0; n < 7; ++n) {
        double expected = 0;
        for (std::int64_t k = 0; k < 256; ++k)
            expected += static_cast<double>(w.values[static_cast<std::size_t>(n * 256 + k)]) *
                        x[static_cast<std::size_t>(k)];
        CHECK(y[static_cast<std::size_t>(n)] == Approx(expected).epsilon(1e-5).margin(1e-5));
    }
}

TEST_CASE("every cpu kernel variant equals the reference on random shapes, 1..17 rows") {
    for (auto isa : {kernels::CpuIsa::Scalar, kernels::CpuIsa::Avx2, kernels::CpuIsa::Avx512Vnni,
                     kernels::CpuIsa::Amx, kernels::CpuIsa::Avx512Vnni256}) {
        if (!kernels::cpu_isa_supported(isa)) {
            WARN("SKIPPED: this CPU lacks an instruction set variant " << static_cast<int>(isa));
            continue;
        }
        auto reference = kernels::make_reference_backend();
        auto cpu = kernels::make_cpu_backend(2, isa);
        std::mt19937 rng(17);
        for (TypeId type :
             {TypeId::I2_S, TypeId::TQ2_0, TypeId::TQ1_0, TypeId::F16, TypeId::Q8_0}) {
            for (std::int64_t n_rows : {1, 3, 17}) {
                const std::int64_t cols =
                    (type == TypeId::I2_S ? 128 : 256) * (1 + static_cast<std::int64_t>(rng() % 3));
                const std::int64_t rows = 1 + static_cast<std::int64_t>(rng() % 40);
                Matrix w;
                if (type == TypeId::F16 || type == TypeId::Q8_0) {
                    w.values = random_activations(rows * cols, static_cast<std::uint32_t>(rng()));
                    const quant::TypeTraits& t = quant::traits(type);
                    w.bytes.resize(quant::tensor_bytes(t, w.values.size()));
                    t.quantize(w.values.data(), static_cast<std::int64_t>(w.values.size()),
                               w.bytes.data());
                    w.view = {type, w.bytes.data(), rows, cols, 1.0f};
                } else {
                    w = ternary_matrix(type, rows, cols, static_cast<std::uint32_t>(rng()));
                }
                const auto x = random_activations(n_rows * cols, static_cast<std::uint32_t>(rng()));
                std::vector<float> a(static_cast<std::size_t>(n_rows * rows)), b(a.size());
                reference->matmul(w.view, x.data(), n_rows, a.data());
                cpu->matmul(w.view, x.data(), n_rows, b.data());
                INFO(std::string(quant::traits(type).name)
                     << " " << rows << "x" << cols << " x " << n_rows << " rows");
                for (std::size_t i = 0; i < a.size(); ++i) {
                    if (w.view.is_ternary()) {
                        REQUIRE(b[i] == a[i]);  // same integer dot, same scaling: bit-identical
                    } else {
                        REQUIRE(b[i] == Approx(a[i]).epsilon(1e-4).margin(1e-4));
                    }
                }
            }
        }
    }
}

TEST_CASE(
    "one token through an F16 or Q8_0 matrix gives the bits of the same token among several") {
    // Decode streams two rows of a chunk at once (the head: 64-row chunks, rows i and i + 32);
    // several tokens take one row at a time. Both must give every row the same bits: chunks
    // full, ragged and odd, widths with 8-wide and scalar tails (F16) and odd block counts
    // (Q8_0), on every instruction set variant.
    for (auto isa :
         {kernels::CpuIsa::Avx2, kernels::CpuIsa::Avx512Vnni, kernels::CpuIsa::Avx512Vnni256}) {
        if (!kernels::cpu_isa_supported(isa)) {
            WARN("SKIPPED: this CPU lacks an instruction set variant " << static_cast<int>(isa));
            continue;
        }
        auto cpu = kernels::make_cpu_backend(2, isa);
        std::uint32_t seed = 300;
        for (TypeId type : {TypeId::F16, TypeId::Q8_0})
            for (const std::int64_t rows : {1, 2, 3, 63, 64, 65, 130, 201})
                for (const std::int64_t cols : type == TypeId::F16
                                                   ? std::vector<std::int64_t>{8, 40, 67, 2560}
                                                   : std::vector<std::int64_t>{32, 96, 2592}) {
                    Matrix w;
                    w.values = random_activations(rows * cols, ++seed);
                    const quant::TypeTraits& t = quant::traits(type);
                    w.bytes.resize(quant::tensor_bytes(t, w.values.size()));
                    t.quantize(w.values.data(), static_cast<std::int64_t>(w.values.size()),
                               w.bytes.data());
                    w.view = {type, w.bytes.data(), rows, cols, 1.0f};
                    const auto x = random_activations(2 * cols, ++seed);
                    std::vector<float> one(static_cast<std::size_t>(rows)),
                        two(static_cast<std::size_t>(2 * rows));
                    cpu->matmul(w.view, x.data(), 1, one.data());
                    cpu->matmul(w.view, x.data(), 2, two.data());
                    INFO(t.name << " " << rows << " x " << cols);
                    REQUIRE(std::vector<float>(two.begin(), two.begin() + rows) == one);
                }
    }
}

TEST_CASE("the I2_S prefill tiles (AVX2 2 x 4, VNNI 4 x 4 in 64-row blocks) equal the reference") {
    // Shapes around the tiling: row blocks and their ragged ends, token groups and their
    // remainders, an odd block count (the row kernel instead).
    for (auto isa :
         {kernels::CpuIsa::Avx2, kernels::CpuIsa::Avx512Vnni, kernels::CpuIsa::Avx512Vnni256}) {
        if (!kernels::cpu_isa_supported(isa)) {
            WARN("SKIPPED: this CPU lacks an instruction set variant " << static_cast<int>(isa));
            continue;
        }
        check_i2s_shapes(*kernels::make_cpu_backend(2, isa), {256, 2560, 384}, {4, 67, 130},
                         {4, 6, 13}, 100);
    }
}

TEST_CASE("the I2_S AMX tiles equal the reference (16-token groups, ragged rows and tokens)") {
    if (!kernels::cpu_isa_supported(kernels::CpuIsa::Amx)) {
        WARN("SKIPPED: this CPU (or OS) offers no AMX int8 tiles");
        return;
    }
    auto reference = kernels::make_reference_backend();
    auto cpu = kernels::make_cpu_backend(2, kernels::CpuIsa::Amx);
    REQUIRE(cpu->kernel_names()[0].find("amx") != std::string::npos);
    check_i2s_shapes(*cpu, {256, 2560, 6912}, {1, 15, 16, 17, 33, 67}, {16, 17, 31, 32, 33, 50},
                     300);
    // The largest sums: all codes 2, activations -128 (|D| = 256 * 6912).
    const std::int64_t rows = 20, cols = 6912, tokens = 20;
    std::vector<float> ones(static_cast<std::size_t>(rows * cols), 1.0f);
    std::vector<std::uint8_t> bytes(quant::tensor_bytes(quant::traits(TypeId::I2_S), ones.size()));
    quant::quantize_i2_s(ones.data(), static_cast<std::int64_t>(ones.size()), bytes.data());
    const kernels::WeightView view{TypeId::I2_S, bytes.data(), rows, cols, 1.0f};
    std::vector<float> x(static_cast<std::size_t>(cols * tokens), -1.0f);
    std::vector<float> a(static_cast<std::size_t>(rows * tokens)), b(a.size());
    reference->matmul(view, x.data(), tokens, a.data());
    cpu->matmul(view, x.data(), tokens, b.data());
    CHECK(a == b);
    CHECK(b[0] == Approx(-static_cast<double>(cols)).epsilon(1e-3));
}

TEST_CASE("I2_S kernels handle extreme activations and long rows exactly") {
    // All codes 2 and activations -128: the largest magnitude an int32 accumulator sees.
    const std::int64_t rows = 3, cols = 6912 + 128;  // an odd number of 128-blocks
    std::vector<float> w(static_cast<std::size_t>(rows * cols), 1.0f);
    std::vector<std::uint8_t> bytes(quant::tensor_bytes(quant::traits(TypeId::I2_S), w.size()));
    quant::quantize_i2_s(w.data(), static_cast<std::int64_t>(w.size()), bytes.data());
    const kernels::WeightView view{TypeId::I2_S, bytes.data(), rows, cols, 1.0f};
    std::vector<float> x(static_cast<std::size_t>(cols * 9), -1.0f);
    std::vector<float> a(static_cast<std::size_t>(rows * 9)), b(a.size());
    kernels::make_reference_backend()->matmul(view, x.data(), 9, a.data());
    for (auto isa : {kernels::CpuIsa::Scalar, kernels::CpuIsa::Avx2, kernels::CpuIsa::Avx512Vnni,
                     kernels::CpuIsa::Amx, kernels::CpuIsa::Avx512Vnni256}) {
        if (!kernels::cpu_isa_supported(isa)) continue;
        kernels::make_cpu_backend(2, isa)->matmul(view, x.data(), 9, b.data());
        CHECK(a == b);
        CHECK(b[0] == Approx(-static_cast<double>(cols)).epsilon(1e-3));
    }
}

TEST_CASE("I2_S kernels equal the reference on raw bytes, code 3 included") {
    // Quantization never writes code 3, but a file may hold it: every kernel must still compute
    // the reference's integers (the int16 sums' bounds assume any 2-bit code). Rows odd and even
    // (the prefill tiles take rows in pairs or fours); one token, five (a tile of four and a
    // remainder) and 40 (AMX: two token groups and a ragged one).
    std::mt19937 rng(29);
    auto reference = kernels::make_reference_backend();
    for (auto isa : {kernels::CpuIsa::Scalar, kernels::CpuIsa::Avx2, kernels::CpuIsa::Avx512Vnni,
                     kernels::CpuIsa::Amx, kernels::CpuIsa::Avx512Vnni256}) {
        if (!kernels::cpu_isa_supported(isa)) continue;
        auto cpu = kernels::make_cpu_backend(2, isa);
        for (std::int64_t rows : {1, 2, 7, 40})
            for (std::int64_t tokens : {1, 5, 40}) {
                // 23 blocks: the int16 sums flush twice; 24 for the AMX tiles (pairs of blocks)
                const std::int64_t cols = 128 * (tokens == 40 ? 24 : 23);
                std::vector<std::uint8_t> bytes(static_cast<std::size_t>(rows * cols / 4) + 32);
                for (auto& b : bytes) b = static_cast<std::uint8_t>(rng());
                const kernels::WeightView view{TypeId::I2_S, bytes.data(), rows, cols, 0.5f};
                const auto x = random_activations(tokens * cols, static_cast<std::uint32_t>(rng()));
                std::vector<float> a(static_cast<std::size_t>(rows * tokens)), b(a.size());
                reference->matmul(view, x.data(), tokens, a.data());
                cpu->matmul(view, x.data(), tokens, b.data());
                INFO("isa " << static_cast<int>(isa) << ", " << rows << " rows, " << tokens
                            << " tokens");
                REQUIRE(a == b);
            }
    }
}

TEST_CASE("get_row dequantizes one row and rejects an out-of-range index") {
    const Matrix w = ternary_matrix(TypeId::I2_S, 3, 128, 5);
    std::vector<float> row(128);
    auto backend = kernels::make_cpu_backend(1);
    backend->get_row(w.view, 2, row.data());
    for (int k = 0; k < 128; ++k)
        CHECK(row[static_cast<std::size_t>(k)] == w.values[static_cast<std::size_t>(2 * 128 + k)]);
    CHECK_THROWS(backend->get_row(w.view, 3, row.data()));
}

TEST_CASE("matmul_many equals separate matmuls (shared activation quantization, one schedule)") {
    const Matrix q = ternary_matrix(TypeId::I2_S, 40, 256, 1),
                 k = ternary_matrix(TypeId::I2_S, 8, 256, 2);
    const Matrix f = ternary_matrix(TypeId::TQ2_0, 5, 256, 3);  // not fusable with I2_S: falls back
    const auto x = random_activations(256 * 3, 9);
    auto cpu = kernels::make_cpu_backend(2);
    std::vector<float> yq(40 * 3), yk(8 * 3), yf(5 * 3), sq(yq.size()), sk(yk.size()),
        sf(yf.size());
    cpu->matmul_many(std::vector<kernels::MatmulJob>{{&q.view, yq.data()}, {&k.view, yk.data()}},
                     x.data(), 3);
    cpu->matmul(q.view, x.data(), 3, sq.data());
    cpu->matmul(k.view, x.data(), 3, sk.data());
    CHECK(yq == sq);
    CHECK(yk == sk);
    cpu->matmul_many(std::vector<kernels::MatmulJob>{{&q.view, yq.data()}, {&f.view, yf.data()}},
                     x.data(), 3);
    cpu->matmul(f.view, x.data(), 3, sf.data());
    CHECK(yq == sq);
    CHECK(yf == sf);
}

TEST_CASE("decode products of several ~256 kB tasks equal the reference") {
    // One token: each matrix is cut into tasks of ~256 kB of weights; rows 1000 and 777 of
    // K = 2560 give 408-row tasks with ragged ends, two matrices in one call.
    auto reference = kernels::make_reference_backend();
    const Matrix a = ternary_matrix(TypeId::I2_S, 1000, 2560, 11),
                 b = ternary_matrix(TypeId::I2_S, 777, 2560, 12);
    const auto x = random_activations(2560, 13);
    std::vector<float> ra(1000), rb(777);
    reference->matmul(a.view, x.data(), 1, ra.data());
    reference->matmul(b.view, x.data(), 1, rb.data());
    for (auto isa :
         {kernels::CpuIsa::Avx2, kernels::CpuIsa::Avx512Vnni, kernels::CpuIsa::Avx512Vnni256}) {
        if (!kernels::cpu_isa_supported(isa)) continue;
        for (const int threads : {2, 3}) {
            auto cpu = kernels::make_cpu_backend(threads, isa);
            std::vector<float> ya(1000), yb(777);
            cpu->matmul_many(
                std::vector<kernels::MatmulJob>{{&a.view, ya.data()}, {&b.view, yb.data()}},
                x.data(), 1);
            CHECK(ya == ra);
            CHECK(yb == rb);
            cpu->matmul(b.view, x.data(), 1, yb.data());
            CHECK(yb == rb);
        }
    }
}

TEST_CASE("gate and up with relu^2 applied as the products come out equal the separate steps") {
    // Expected: the reference backend's two products, each scale, then relu(g)^2 * u written out
    // here. Every CPU variant (the fused tasks for several tokens; one token and the TL1 backend
    // take the unfused path) must give the same bits.
    auto reference = kernels::make_reference_backend();
    std::vector<std::unique_ptr<kernels::Backend>> backends;
    for (auto isa : {kernels::CpuIsa::Scalar, kernels::CpuIsa::Avx2, kernels::CpuIsa::Avx512Vnni,
                     kernels::CpuIsa::Amx, kernels::CpuIsa::Avx512Vnni256})
        if (kernels::cpu_isa_supported(isa)) backends.push_back(kernels::make_cpu_backend(2, isa));
    if (kernels::cpu_isa_supported(kernels::CpuIsa::Avx2))
        backends.push_back(kernels::make_tl1_backend(2));
    std::uint32_t seed = 700;
    std::vector<Matrix> alive;  // TL1 keys its repacked copies by address
    for (const std::int64_t rows : {1, 33, 70})
        for (const std::int64_t cols : {256, 2560})
            for (const std::int64_t tokens : {1, 5, 40})
                for (const float scale : {1.0f, 0.75f}) {
                    alive.push_back(ternary_matrix(TypeId::I2_S, rows, cols, ++seed));
                    alive.push_back(ternary_matrix(TypeId::I2_S, rows, cols, ++seed));
                    const Matrix& gate = alive[alive.size() - 2];
                    const Matrix& up = alive.back();
                    const auto x = random_activations(tokens * cols, ++seed);
                    const std::size_t n = static_cast<std::size_t>(tokens * rows);
                    std::vector<float> g(n), u(n), expected(n), y(n);
                    reference->matmul(gate.view, x.data(), tokens, g.data());
                    reference->matmul(up.view, x.data(), tokens, u.data());
                    const float gate_scale = scale, up_scale = 2.0f - scale;
                    for (std::size_t i = 0; i < n; ++i) {
                        float a = g[i], b = u[i];
                        if (gate_scale != 1.0f) a *= gate_scale;
                        if (up_scale != 1.0f) b *= up_scale;
                        const float r = a > 0.0f ? a : 0.0f;
                        expected[i] = r * r * b;
                    }
                    for (const auto& backend : backends) {
                        backend->matmul_gate_relu_squared_up(gate.view, gate_scale, up.view,
                                                             up_scale, x.data(), tokens, y.data());
                        INFO(backend->kernel_names()[0] << ": " << rows << "x" << cols << " x "
                                                        << tokens << " tokens, scale " << scale);
                        REQUIRE(y == expected);
                    }
                    reference->matmul_gate_relu_squared_up(gate.view, gate_scale, up.view, up_scale,
                                                           x.data(), tokens, y.data());
                    REQUIRE(y == expected);
                }
}

namespace {

// Every lookup-table kernel against the reference: rows around its row groups, K from one I2_S
// block to the 2B4T FFN width (K % 3 == 0, 1 and 2 for TL2's triples), 1..9 tokens, outliers.
void check_lookup_kernel(const kernels::Backend& lut) {
    auto reference = kernels::make_reference_backend();
    std::mt19937 rng(23);
    std::vector<Matrix> alive;  // the backend keys its repacked copies by address
    for (const std::int64_t rows : {1, 31, 32, 33, 63, 64, 70, 127, 130})
        for (const std::int64_t cols : {128, 384, 2560, 6912})
            for (const std::int64_t tokens : {1, 3, 9}) {
                alive.push_back(
                    ternary_matrix(TypeId::I2_S, rows, cols, static_cast<std::uint32_t>(rng())));
                const Matrix& w = alive.back();
                auto x = random_activations(tokens * cols, static_cast<std::uint32_t>(rng()));
                x[0] = 1e4f;  // an outlier: most other activations quantize to 0 or +-1
                std::vector<float> a(static_cast<std::size_t>(tokens * rows)), b(a.size());
                reference->matmul(w.view, x.data(), tokens, a.data());
                lut.matmul(w.view, x.data(), tokens, b.data());
                INFO(rows << "x" << cols << " x " << tokens << " tokens");
                REQUIRE(a == b);
            }
    // Extreme activations: every q at -128 or 127 gives the largest table entries and sums.
    Matrix w = ternary_matrix(TypeId::I2_S, 64, 6912, 5);
    std::vector<float> x(6912);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = i % 3 == 0 ? -1.0f : 1.0f;
    std::vector<float> a(64), b(64);
    reference->matmul(w.view, x.data(), 1, a.data());
    lut.prepare_weights({&w.view});  // repacked ahead of use, as the engine does
    lut.matmul(w.view, x.data(), 1, b.data());
    CHECK(a == b);
    // matmul_many (Q/K/V sharing one input) takes the same path.
    Matrix w2 = ternary_matrix(TypeId::I2_S, 40, 6912, 6);
    std::vector<float> c(40), d(40);
    reference->matmul(w2.view, x.data(), 1, c.data());
    lut.matmul_many(std::vector<kernels::MatmulJob>{{&w.view, b.data()}, {&w2.view, d.data()}},
                    x.data(), 1);
    CHECK(a == b);
    CHECK(c == d);
    // Decode tasks span several row groups (~256 kB of weights): matrices of several tasks,
    // the last one ragged, next to each other in one call.
    Matrix tall = ternary_matrix(TypeId::I2_S, 1000, 2560, 7);
    Matrix tall2 = ternary_matrix(TypeId::I2_S, 777, 2560, 8);
    const auto xt = random_activations(2560, 9);
    std::vector<float> e(1000), f(1000), g(777), h(777);
    reference->matmul(tall.view, xt.data(), 1, e.data());
    reference->matmul(tall2.view, xt.data(), 1, g.data());
    lut.matmul_many(
        std::vector<kernels::MatmulJob>{{&tall.view, f.data()}, {&tall2.view, h.data()}}, xt.data(),
        1);
    CHECK(e == f);
    CHECK(g == h);
    // Prefill over several tasks (the last ragged) and token blocks (the last ragged).
    Matrix wide = ternary_matrix(TypeId::I2_S, 2100, 2560, 10);
    const auto xp = random_activations(20 * 2560, 11);
    std::vector<float> p(20 * 2100), q(p.size());
    reference->matmul(wide.view, xp.data(), 20, p.data());
    lut.matmul(wide.view, xp.data(), 20, q.data());
    CHECK(p == q);
}

}  // namespace

TEST_CASE("TL1 lookup-table kernel equals the reference bit for bit") {
    if (!kernels::cpu_isa_supported(kernels::CpuIsa::Avx2)) {
        WARN("SKIPPED: TL1 needs AVX2");
        return;
    }
    check_lookup_kernel(*kernels::make_tl1_backend(2, kernels::CpuIsa::Avx2));
    if (cpu_features().avx512f && cpu_features().avx512bw) {
        check_lookup_kernel(*kernels::make_tl1_backend(2));  // vpermw
        CHECK(kernels::make_tl1_backend(2)->kernel_names()[0].find("vpermw") != std::string::npos);
    } else {
        WARN("SKIPPED: TL1's AVX-512BW kernel (this CPU lacks AVX-512BW)");
    }
}

TEST_CASE("TL2 lookup-table kernel equals the reference bit for bit") {
    std::unique_ptr<kernels::Backend> tl2;
    try {
        tl2 = kernels::make_tl2_backend(2);
    } catch (const Error& e) {
        CHECK(e.code() == ErrorCode::Unsupported);
        WARN("SKIPPED: " << e.what());
        return;
    }
    check_lookup_kernel(*tl2);
}

TEST_CASE("Q8_0 kernels handle an odd number of 32-blocks (the 512-bit kernel pairs blocks)") {
    auto reference = kernels::make_reference_backend();
    for (auto isa : {kernels::CpuIsa::Best, kernels::CpuIsa::Avx2}) {
        if (!kernels::cpu_isa_supported(isa)) continue;
        auto cpu = kernels::make_cpu_backend(2, isa);
        for (const std::int64_t cols : {32, 96, 2592}) {
            const std::int64_t rows = 19;
            Matrix w;
            w.values = random_activations(rows * cols, static_cast<std::uint32_t>(cols));
            const quant::TypeTraits& t = quant::traits(TypeId::Q8_0);
            w.bytes.resize(quant::tensor_bytes(t, w.values.size()));
            t.quantize(w.values.data(), static_cast<std::int64_t>(w.values.size()), w.bytes.data());
            w.view = {TypeId::Q8_0, w.bytes.data(), rows, cols, 1.0f};
            const auto x = random_activations(2 * cols, 99);
            std::vector<float> a(static_cast<std::size_t>(2 * rows)), b(a.size());
            reference->matmul(w.view, x.data(), 2, a.data());
            cpu->matmul(w.view, x.data(), 2, b.data());
            INFO(cols << " columns");
            for (std::size_t i = 0; i < a.size(); ++i)
                REQUIRE(b[i] == Approx(a[i]).epsilon(1e-4).margin(1e-4));
        }
    }
}

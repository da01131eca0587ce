// The default CPU backend: the reference numerics with hand-written kernels: I2_S through the
// tiled integer kernels of i2s_kernels.cpp (AVX-512 VNNI / AVX2 / scalar, picked once from the
// CPU features), TQ2_0/TQ1_0 through the AVX2 block dots of tq_kernels.cpp, F16 with F16C + FMA,
// Q8_0 with AVX2, other types through the reference rows; output rows are split across OpenMP
// threads.
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <mutex>
#include <string>
#include <unordered_map>

#include "amx_kernels.hpp"
#include "bitnet/common/cpu_features.hpp"
#include "bitnet/common/error.hpp"
#include "bitnet/common/log.hpp"
#include "bitnet/kernels/backend.hpp"
#include "bitnet/kernels/ops.hpp"
#include "bitnet/quantization/formats.hpp"
#include "bitnet/quantization/fp16.hpp"
#include "f16_kernels.hpp"
#include "head_screen.hpp"
#include "i2s_kernels.hpp"
#include "matmul_common.hpp"
#include "prefetch.hpp"
#include "q8_0_kernels.hpp"
#include "tl1_kernels.hpp"
#include "tl2_kernels.hpp"
#include "tq_kernels.hpp"

namespace bitnet::kernels {
namespace {

using quant::TypeId;

// The lookup-table kernels (tl1_kernels / tl2_kernels) behind one interface for matmul_lut.
enum class LutKernel { None, Tl1, Tl1Words, Tl2 };
struct LutCaches {
    std::unordered_map<const void*, std::unique_ptr<detail::Tl1Weights>> tl1;
    std::unordered_map<const void*, std::unique_ptr<detail::WordLutWeights>> tl1_words;
    std::unordered_map<const void*, std::unique_ptr<detail::Tl2Weights>> tl2;
};
// One lookup kernel's repack, tables and dots, and where its copies are kept.
template <class W, std::int64_t Rows, std::int64_t DecodeGroups, auto Cache, auto Repack,
          auto TableBytes, auto BuildTables, auto DotGroups>
struct LutTraits {
    using Weights = W;
    static constexpr std::int64_t kRows = Rows;
    static constexpr std::int64_t kDecodeGroups = DecodeGroups;  // row groups per decode pass
    static auto& cache(LutCaches& c) { return c.*Cache; }
    static Weights repack(const std::uint8_t* d, std::int64_t rows, std::int64_t cols) {
        return Repack(d, rows, cols);
    }
    static std::int64_t table_bytes(std::int64_t cols) { return TableBytes(cols); }
    static void build_tables(const std::int8_t* q, std::int64_t cols, std::int8_t* t) {
        BuildTables(q, cols, t);
    }
    static void dot_groups(const Weights& w, std::int64_t g, std::int64_t count,
                           const std::int8_t* t, std::int64_t n, std::int32_t* dots,
                           std::int64_t stride) {
        DotGroups(w, g, count, t, n, dots, stride);
    }
};
using Tl1 = LutTraits<detail::Tl1Weights, detail::kTl1Rows, 2, &LutCaches::tl1, &detail::repack_tl1,
                      &detail::tl1_table_bytes, &detail::build_tl1_tables, &detail::tl1_dot_groups>;
using Tl1Words =
    LutTraits<detail::WordLutWeights, detail::kWordLutRows, detail::kWordLutDecodeGroups,
              &LutCaches::tl1_words, &detail::repack_tl1_words, &detail::tl1_words_table_bytes,
              &detail::build_tl1_word_tables, &detail::tl1_words_dot_groups>;
using Tl2 = LutTraits<detail::Tl2Weights, detail::kTl2Rows, detail::kTl2DecodeGroups,
                      &LutCaches::tl2, &detail::repack_tl2, &detail::tl2_table_bytes,
                      &detail::build_tl2_tables, &detail::tl2_dot_groups>;

class CpuBackend final : public Backend {
  public:
    // `i2s_measured`: pick the I2_S variant per call from the start-up measurement (decode and
    // prefill may differ); otherwise always `i2s`.
    CpuBackend(int threads, detail::I2sKernel i2s, LutKernel lut = LutKernel::None,
               bool vnni_allowed = true, bool i2s_measured = false)
        : threads_(threads > 0 ? threads : cpu_features().physical_cores),
          i2s_(i2s),
          i2s_measured_(i2s_measured),
          lut_(lut) {
        f16c_ = cpu_features().f16c && cpu_features().avx2 && cpu_features().fma;
        // The TQ kernels follow the I2_S choice: the scalar variant stays scalar (tests).
        tq_avx2_ = cpu_features().avx2 && i2s != detail::I2sKernel::Generic;
        const CpuFeatures& f = cpu_features();
        q8_vnni_ = f16c_ && f.avx512f && f.avx512bw && f.avx512vnni && vnni_allowed;
        head_prefetch_ = detail::head_prefetch_bytes(f.vendor == "AuthenticAMD");
    }

    void matmul(const WeightView& w, const float* x, std::int64_t n_rows, float* y) const override {
        if (w.type == TypeId::I2_S) {
            const MatmulJob job[] = {{&w, y}};
            matmul_i2s(job, x, n_rows);
            return;
        }
        // Other types: per-row preparation, then rows of W split across threads.
        std::vector<detail::PreparedRow>& prepared = prepared_;
        prepared.resize(static_cast<std::size_t>(n_rows));
        for (std::int64_t r = 0; r < n_rows; ++r)
            detail::prepare_row(w, x + r * w.cols, true, prepared[static_cast<std::size_t>(r)]);
        const std::int64_t rows = w.rows;
        const bool f16 = w.type == TypeId::F16 && f16c_;
        const bool q8 = w.type == TypeId::Q8_0 && f16c_;
        const bool q8_vnni = q8 && q8_vnni_;
        const bool tq = (w.type == TypeId::TQ2_0 || w.type == TypeId::TQ1_0) && tq_avx2_;
        const std::int64_t blocks = w.cols / quant::kQK_K;
        // (the stride once: a type-table lookup per row was ~0.5% of a 2-thread decode)
        const std::uint64_t stride = w.row_bytes();
        if (n_rows == 1 && (f16 || q8 || (tq && w.type == TypeId::TQ2_0))) {
            const detail::PreparedRow& p = prepared[0];
            const int ahead = head_prefetch_;
            if (tq) {
                const std::int32_t* sums = p.block_sums.data();
                decode_rows_in_pairs(
                    w, y,
                    [&](const std::uint8_t* row) {
                        thread_local std::vector<std::int32_t> dots;
                        dots.resize(static_cast<std::size_t>(blocks));
                        detail::tq_block_dots_avx2(w.type, row, p.q.data(), blocks, dots.data());
                        return detail::tq_row_output(w.type, row, dots.data(), sums, blocks, p.act);
                    },
                    [&](const std::uint8_t* a, const std::uint8_t* b, float* ya, float* yb) {
                        detail::tq2_rows_pair_avx2(a, b, p.q.data(), sums, blocks, p.act.scale, ya,
                                                   yb);
                    });
            } else if (f16) {
                const float* xf = p.f.data();
                decode_rows_in_pairs(
                    w, y,
                    [&](const std::uint8_t* row) {
                        return detail::dot_f16_f16c(reinterpret_cast<const std::uint16_t*>(row), xf,
                                                    w.cols, ahead);
                    },
                    [&](const std::uint8_t* a, const std::uint8_t* b, float* ya, float* yb) {
                        detail::dot_f16_f16c_pair(reinterpret_cast<const std::uint16_t*>(a),
                                                  reinterpret_cast<const std::uint16_t*>(b), xf,
                                                  w.cols, ahead, ya, yb);
                    });
            } else {
                const std::uint8_t* xq = p.q8.data();
                decode_rows_in_pairs(
                    w, y,
                    [&](const std::uint8_t* row) {
                        return q8_vnni ? detail::dot_q8_0_vnni(row, xq, w.cols, ahead)
                                       : detail::dot_q8_0_avx2(row, xq, w.cols, ahead);
                    },
                    [&](const std::uint8_t* a, const std::uint8_t* b, float* ya, float* yb) {
                        if (q8_vnni)
                            detail::dot_q8_0_vnni_pair(a, b, xq, w.cols, ahead, ya, yb);
                        else
                            detail::dot_q8_0_avx2_pair(a, b, xq, w.cols, ahead, ya, yb);
                    });
            }
            return;
        }
        if (tq) {  // (one token took the decode path above for TQ2_0)
            tq_tokens(w, prepared, n_rows, y);
            return;
        }
#pragma omp parallel for schedule(dynamic, 64) num_threads(threads_)
        for (std::int64_t n = 0; n < rows; ++n) {
            const std::uint8_t* row = w.data + static_cast<std::uint64_t>(n) * stride;
            for (std::int64_t r = 0; r < n_rows; ++r) {
                const detail::PreparedRow& p = prepared[static_cast<std::size_t>(r)];
                y[r * rows + n] =
                    f16       ? detail::dot_f16_f16c(reinterpret_cast<const std::uint16_t*>(row),
                                                     p.f.data(), w.cols, head_prefetch_)
                    : q8_vnni ? detail::dot_q8_0_vnni(row, p.q8.data(), w.cols, head_prefetch_)
                    : q8      ? detail::dot_q8_0_avx2(row, p.q8.data(), w.cols, head_prefetch_)
                              : detail::dot_row_reference(w, n, p, true);
            }
        }
    }

    std::uint64_t prepare_screened_head(const WeightView& w, RowReader reader) const override {
        if (w.type != TypeId::F16 || !f16c_) return 0;
        Screen& screen = screens_[w.data];
        if (screen.head == nullptr || screen.head->rows() != w.rows ||
            screen.head->cols() != w.cols)
            screen.head = std::make_unique<detail::ScreenedHead>(
                reinterpret_cast<const std::uint16_t*>(w.data), w.rows, w.cols, threads_);
        screen.reader = std::move(reader);
        return screen.head->bytes();
    }

    // Screened: the int8 rows' bounds, then the rows that reach the largest lower bound from
    // the F16 rows, in ascending order, so the first largest of them is the full head's answer.
    std::int32_t matmul_argmax(const WeightView& w, const float* x) const override {
        const detail::ScreenedHead* screen = screen_for(w);
        const float* xf = screen != nullptr ? screen_input(w, x) : nullptr;
        const float threshold =
            screen != nullptr ? screen->compute_bounds(xf, screen_kernel_, threads_, head_prefetch_)
                              : std::nanf("");
        if (std::isnan(threshold)) return Backend::matmul_argmax(w, x);  // x zero or not finite
        screen->rows_reaching(threshold, screened_rows_);
        compute_screened_rows(w, xf);
        const std::int64_t best = argmax_first(screened_values_.data(),
                                               static_cast<std::int64_t>(screened_values_.size()));
        return best < 0 ? -1 : screened_rows_[static_cast<std::size_t>(best)];
    }

    // Screened: the bounds with the penalty applied (it is non-decreasing, so it maps bounds to
    // bounds), the rows whose upper bound reaches the k-th largest lower bound, and the rule over
    // their exact values. A row left out is below k rows that are all computed: never chosen,
    // never tied at the k-th place.
    void matmul_top_k(const WeightView& w, const float* x, const TopKRule& rule,
                      std::vector<ScoredRow>& out) const override {
        const detail::ScreenedHead* screen = screen_for(w);
        const float* xf = screen != nullptr && rule.k > 0 ? screen_input(w, x) : nullptr;
        if (xf == nullptr ||
            std::isnan(screen->compute_bounds(xf, screen_kernel_, threads_, head_prefetch_))) {
            Backend::matmul_top_k(w, x, rule, out);
            return;
        }
        const auto k = static_cast<std::size_t>(rule.k);
        screen->penalize_bounds(rule.penalized, rule.repeat_penalty);
        screen->rows_reaching(screen->kth_largest_lower(k), screened_rows_);
        compute_screened_rows(w, xf);
        TopKHeap best(k, out);
        auto penalized = rule.penalized.begin();  // both ascending: one merge
        for (std::size_t i = 0; i < screened_rows_.size(); ++i) {
            const std::int32_t row = screened_rows_[i];
            while (penalized != rule.penalized.end() && *penalized < row) ++penalized;
            const float v = screened_values_[i];
            best.offer(penalized != rule.penalized.end() && *penalized == row
                           ? apply_repeat_penalty(v, rule.repeat_penalty)
                           : v,
                       row);
        }
    }

    void get_row(const WeightView& w, std::int64_t index, float* out) const override {
        reference_->get_row(w, index, out);
    }

    void matmul_many(std::span<const MatmulJob> jobs, const float* x,
                     std::int64_t n_rows) const override {
        bool fusable = !jobs.empty();
        for (const MatmulJob& j : jobs)
            fusable = fusable && j.w->type == TypeId::I2_S && j.w->cols == jobs[0].w->cols;
        if (!fusable) {
            Backend::matmul_many(jobs, x, n_rows);
            return;
        }
        matmul_i2s(jobs, x, n_rows);
    }

    // Prefill's gate and up products task by task: a task computes the same rows of both and
    // writes relu(gate)^2 * up while their dots are in its cache — no `up` array, no second pass
    // over both (on the Xeon host that pass was 11% of a 2-thread pp128 once the products ran on
    // AMX). One token (decode) keeps matmul_many's tasks, each streaming one matrix.
    void matmul_gate_relu_squared_up(const WeightView& gate, float gate_scale, const WeightView& up,
                                     float up_scale, const float* x, std::int64_t n_tokens,
                                     float* y) const override {
        const bool fusable = lut_ == LutKernel::None && n_tokens > 1 && gate.type == TypeId::I2_S &&
                             up.type == TypeId::I2_S && gate.rows == up.rows &&
                             gate.cols == up.cols;
        if (!fusable) {
            Backend::matmul_gate_relu_squared_up(gate, gate_scale, up, up_scale, x, n_tokens, y);
            return;
        }
        const std::int64_t k = gate.cols, rows = gate.rows;
        const detail::I2sKernel kernel = i2s_kernel_for(n_tokens, k);
        const std::int8_t* arranged = prepare_i2s_inputs(kernel, x, n_tokens, k);
        const std::int64_t rows_per_task = i2s_rows_per_task(k, n_tokens);
        const std::int64_t n_tasks = (rows + rows_per_task - 1) / rows_per_task;
        dots_.resize(static_cast<std::size_t>(2 * rows * n_tokens));
        std::int32_t* gate_dots = dots_.data();
        std::int32_t* up_dots = dots_.data() + rows * n_tokens;
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads_)
        for (std::int64_t i = 0; i < n_tasks; ++i) {
            const std::int64_t r0 = i * rows_per_task, count = std::min(rows_per_task, rows - r0);
            detail::i2s_dot(kernel, {gate.data + r0 * (k / 4), count, k, arranged, n_tokens,
                                     gate_dots + r0, rows});
            detail::i2s_dot(
                kernel, {up.data + r0 * (k / 4), count, k, arranged, n_tokens, up_dots + r0, rows});
            for (std::int64_t t = 0; t < n_tokens; ++t)
                detail::i2s_relu_squared_outputs(gate_dots + t * rows + r0, up_dots + t * rows + r0,
                                                 count, acts_[static_cast<std::size_t>(t)],
                                                 {gate.scale, up.scale, gate_scale, up_scale},
                                                 y + t * rows + r0);
        }
    }

    void prepare_weights(const std::vector<const WeightView*>& weights) const override {
        if (lut_ == LutKernel::None) return;
        std::vector<const WeightView*> todo;
        for (const WeightView* w : weights)
            if (w->type == TypeId::I2_S) todo.push_back(w);
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads_)
        for (std::size_t i = 0; i < todo.size(); ++i) {
            if (lut_ == LutKernel::Tl1)
                lut_weights<Tl1>(*todo[i]);
            else if (lut_ == LutKernel::Tl1Words)
                lut_weights<Tl1Words>(*todo[i]);
            else
                lut_weights<Tl2>(*todo[i]);
        }
    }

    std::string name() const override {
        return "cpu";
    }
    std::vector<std::string> kernel_names() const override {
        const std::string i2s =
            lut_ == LutKernel::Tl1        ? "i2_s tl1 lookup tables (avx2 pshufb)"
            : lut_ == LutKernel::Tl1Words ? "i2_s tl1 lookup tables (avx512 vpermw)"
            : lut_ == LutKernel::Tl2      ? "i2_s tl2 lookup tables (avx512 vpermw)"
            : i2s_measured_
                ? std::string(detail::i2s_kernel_name(detail::best_i2s_kernel(1))) + " (decode), " +
                      detail::i2s_kernel_name(detail::best_i2s_kernel(8)) + " (prefill)" +
                      (cpu_features().amx_int8 ? ", i2_s amx (tdpbusd) (16+ tokens)" : "")
                : detail::i2s_kernel_name(i2s_);
        const char* screen = screen_kernel_ == detail::ScreenKernel::Avx512 ? "avx512bw"
                             : screen_kernel_ == detail::ScreenKernel::Avx2 ? "avx2"
                                                                            : "scalar";
        return {i2s + ", " + std::to_string(threads_) + " threads",
                std::string("f16: ") + (f16c_ ? "f16c+fma" : "scalar") + ", prefetch " +
                    std::to_string(head_prefetch_ / 1024) + " kB ahead" +
                    (screens_.empty() ? ""
                                      : std::string(", greedy/top-k head screened by int8 rows (") +
                                            screen + " vpmaddwd)"),
                std::string("q8_0: ") + (q8_vnni_ ? "avx512 vnni"
                                         : f16c_  ? "avx2 maddubs"
                                                  : "scalar"),
                std::string("tq2_0/tq1_0: ") + (tq_avx2_ ? "avx2 maddubs" : "scalar"),
                "q4_0/q6_k: reference rows, threaded"};
    }

  private:
    // w's screening copy (prepare_screened_head), or null.
    const detail::ScreenedHead* screen_for(const WeightView& w) const {
        const auto found = screens_.find(w.data);
        if (found == screens_.end() || w.type != TypeId::F16 ||
            found->second.head->rows() != w.rows || found->second.head->cols() != w.cols)
            return nullptr;
        return found->second.head.get();
    }
    // x rounded to F16, the F16 kernels' input (in prepared_).
    const float* screen_input(const WeightView& w, const float* x) const {
        prepared_.resize(1);
        detail::prepare_row(w, x, true, prepared_[0]);
        return prepared_[0].f.data();
    }
    // screened_values_ := the F16 rows screened_rows_ . xf, by the one-row F16 kernel (the full
    // product's bits for each row; its row pairs give the same), each row read through the
    // screen's reader where it has one.
    void compute_screened_rows(const WeightView& w, const float* xf) const {
        const RowReader& reader = screens_.find(w.data)->second.reader;
        const auto count = static_cast<std::int64_t>(screened_rows_.size());
        screened_values_.resize(screened_rows_.size());
        const std::uint64_t stride = w.row_bytes();
#pragma omp parallel for schedule(static) num_threads(threads_) if (count > 64)
        for (std::int64_t i = 0; i < count; ++i) {
            const auto r = static_cast<std::uint64_t>(screened_rows_[static_cast<std::size_t>(i)]);
            const std::uint8_t* row = w.data + r * stride;
            thread_local std::vector<std::uint8_t> copy;
            if (reader) {
                copy.resize(stride);
                reader(row, stride, copy.data());
                row = copy.data();
            }
            screened_values_[static_cast<std::size_t>(i)] =
                detail::dot_f16_f16c(reinterpret_cast<const std::uint16_t*>(row), xf, w.cols,
                                     reader ? 0 : head_prefetch_);
        }
    }

    // One token through an F16 or Q8_0 matrix (the head): chunks of kHeadChunk rows on the
    // threads, rows i and i + half of a chunk streamed together by `pair` (an odd last row by
    // `one`).
    static constexpr std::int64_t kHeadChunk = 64;
    template <class One, class Pair>
    void decode_rows_in_pairs(const WeightView& w, float* y, One one, Pair pair) const {
        const std::int64_t rows = w.rows, chunks = (rows + kHeadChunk - 1) / kHeadChunk;
        const std::uint64_t stride = w.row_bytes();
        auto row = [&](std::int64_t r) { return w.data + static_cast<std::uint64_t>(r) * stride; };
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads_)
        for (std::int64_t c = 0; c < chunks; ++c) {
            const std::int64_t r0 = c * kHeadChunk, count = std::min(kHeadChunk, rows - r0);
            const std::int64_t half = count / 2;
            for (std::int64_t i = 0; i < half; ++i)
                pair(row(r0 + i), row(r0 + half + i), y + r0 + i, y + r0 + half + i);
            if (count % 2 != 0) y[r0 + count - 1] = one(row(r0 + count - 1));
        }
    }

    // Several tokens through a TQ2_0 / TQ1_0 matrix (prefill, batches; TQ1_0 also one): rows on
    // the threads, each row's
    // block dots for all tokens with its codes unpacked once per block for four of them, the
    // block scales converted once, then every token's output by tq_output (tq_row_output's
    // float rule).
    void tq_tokens(const WeightView& w, const std::vector<detail::PreparedRow>& prepared,
                   std::int64_t n_rows, float* y) const {
        const std::int64_t rows = w.rows, blocks = w.cols / quant::kQK_K;
        const std::uint64_t stride = w.row_bytes();
        std::vector<const std::int8_t*> q(static_cast<std::size_t>(n_rows));
        for (std::int64_t r = 0; r < n_rows; ++r)
            q[static_cast<std::size_t>(r)] = prepared[static_cast<std::size_t>(r)].q.data();
#pragma omp parallel for schedule(dynamic, 16) num_threads(threads_)
        for (std::int64_t n = 0; n < rows; ++n) {
            const std::uint8_t* row = w.data + static_cast<std::uint64_t>(n) * stride;
            thread_local std::vector<std::int32_t> dots;
            thread_local std::vector<std::int32_t*> dot_rows;
            dots.resize(static_cast<std::size_t>(n_rows * blocks));
            dot_rows.resize(static_cast<std::size_t>(n_rows));
            for (std::int64_t r = 0; r < n_rows; ++r)
                dot_rows[static_cast<std::size_t>(r)] = dots.data() + r * blocks;
            if (w.type == TypeId::TQ2_0)
                detail::tq2_block_dots_tokens_avx2(row, q.data(), static_cast<int>(n_rows), blocks,
                                                   dot_rows.data());
            else
                detail::tq1_block_dots_tokens_avx2(row, q.data(), static_cast<int>(n_rows), blocks,
                                                   dot_rows.data());
            thread_local std::vector<float> scales;
            scales.resize(static_cast<std::size_t>(blocks));
            detail::tq_row_scales(w.type, row, blocks, scales.data());
            for (std::int64_t r = 0; r < n_rows; ++r) {
                const detail::PreparedRow& p = prepared[static_cast<std::size_t>(r)];
                y[r * rows + n] =
                    detail::tq_output(scales.data(), dot_rows[static_cast<std::size_t>(r)],
                                      p.block_sums.data(), blocks, p.act.scale);
            }
        }
    }

    // Rows per task of the I2_S products. Prefill is compute bound: tasks of 32 rows balance the
    // threads. Decode streams the weights once, and a task's first kPrefetchBytes are read
    // without prefetch (the previous task's prefetches ran into rows another thread took), so
    // decode tasks span ~256 kB: on the 2-core VM, tg went 12.7-13.2 -> 15.0 tok/s against
    // 32-row (20 kB) tasks; 128 kB to 1 MB measured the same.
    static std::int64_t i2s_rows_per_task(std::int64_t cols, std::int64_t n_tokens) {
        constexpr std::int64_t kPrefillRows = 32, kDecodeTaskBytes = 256 * 1024;
        if (n_tokens > 1) return kPrefillRows;
        return std::max(kPrefillRows, kDecodeTaskBytes / (cols / 4) / 8 * 8);
    }

    detail::I2sKernel i2s_kernel_for(std::int64_t n_tokens, std::int64_t k) const {
        return detail::i2s_kernel_for(i2s_measured_ ? detail::best_i2s_kernel(n_tokens) : i2s_,
                                      n_tokens, k);
    }

    // Every token's activations quantized once (acts_) and arranged for `kernel`: the input of
    // all I2_S products of x.
    const std::int8_t* prepare_i2s_inputs(detail::I2sKernel kernel, const float* x,
                                          std::int64_t n_tokens, std::int64_t k) const {
        q_.resize(static_cast<std::size_t>(n_tokens * k));
        q_arranged_.resize(q_.size());
        acts_.resize(static_cast<std::size_t>(n_tokens));
        // (prefill: rows on the threads; one row is too little work for a parallel region)
#pragma omp parallel for schedule(static) num_threads(threads_) if (n_tokens > 1)
        for (std::int64_t t = 0; t < n_tokens; ++t) {
            std::int8_t* q = q_.data() + t * k;
            acts_[static_cast<std::size_t>(t)] = quant::quantize_activations_i8(x + t * k, k, q);
            detail::i2s_prepare_activations(kernel, q, k, q_arranged_.data() + t * k);
        }
        const std::int8_t* arranged = q_arranged_.data();
        if (kernel == detail::I2sKernel::Amx) {  // then into tiles of 16 tokens
            q_tiles_.resize(static_cast<std::size_t>(detail::amx_activation_bytes(n_tokens, k)));
            const std::int64_t groups = (n_tokens + detail::kAmxTokens - 1) / detail::kAmxTokens;
#pragma omp parallel for schedule(static) num_threads(threads_)
            for (std::int64_t g = 0; g < groups; ++g)
                detail::amx_arrange_activations(q_arranged_.data(), n_tokens, k, g,
                                                q_tiles_.data());
            arranged = q_tiles_.data();
        }
        return arranged;
    }

    // Activations are quantized once per token and shared by every job (all I2_S, same K); the
    // rows of all jobs are cut into tasks (i2s_rows_per_task) and spread over the threads in one
    // parallel region, each task running the tiled integer kernel over all tokens.
    void matmul_i2s(std::span<const MatmulJob> jobs, const float* x, std::int64_t n_tokens) const {
        if (lut_ == LutKernel::Tl1) {
            matmul_lut<Tl1>(jobs, x, n_tokens);
            return;
        }
        if (lut_ == LutKernel::Tl1Words) {
            matmul_lut<Tl1Words>(jobs, x, n_tokens);
            return;
        }
        if (lut_ == LutKernel::Tl2) {
            matmul_lut<Tl2>(jobs, x, n_tokens);
            return;
        }
        const std::int64_t k = jobs[0].w->cols;
        const detail::I2sKernel kernel = i2s_kernel_for(n_tokens, k);
        const std::int8_t* arranged = prepare_i2s_inputs(kernel, x, n_tokens, k);
        const std::int64_t rows_per_task = i2s_rows_per_task(k, n_tokens);
        tasks_.clear();
        std::int64_t total_rows = 0;
        dot_offsets_.clear();
        for (std::size_t j = 0; j < jobs.size(); ++j) {
            dot_offsets_.push_back(total_rows * n_tokens);
            for (std::int64_t r = 0; r < jobs[j].w->rows; r += rows_per_task)
                tasks_.push_back({j, r});
            total_rows += jobs[j].w->rows;
        }
        dots_.resize(static_cast<std::size_t>(total_rows * n_tokens));
        const auto n_tasks = static_cast<std::int64_t>(tasks_.size());
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads_)
        for (std::int64_t i = 0; i < n_tasks; ++i) {
            const auto& task = tasks_[static_cast<std::size_t>(i)];
            const WeightView& w = *jobs[task.job].w;
            detail::I2sProblem p{w.data + task.first_row * (k / 4),
                                 std::min(rows_per_task, w.rows - task.first_row),
                                 k,
                                 arranged,
                                 n_tokens,
                                 dots_.data() + dot_offsets_[task.job] + task.first_row,
                                 w.rows};
            detail::i2s_dot(kernel, p);
            // The task's outputs, while its dots are in this core's cache (after the loop they
            // would be one thread's serial pass over every row).
            const std::int32_t* d = p.out;
            float* y = jobs[task.job].y + task.first_row;
            for (std::int64_t t = 0; t < n_tokens; ++t)
                for (std::int64_t r = 0; r < p.n_rows; ++r)
                    y[t * w.rows + r] = quant::i2s_output(
                        d[t * w.rows + r], acts_[static_cast<std::size_t>(t)], w.scale);
        }
    }

    // TL1/TL2: per token, int8 activations and their lookup tables; then groups of rows of
    // every job spread over the threads, each looking up all tokens; y = the I2_S rule on the
    // sums.
    template <class Lut>
    void matmul_lut(std::span<const MatmulJob> jobs, const float* x, std::int64_t n_tokens) const {
        const std::int64_t k = jobs[0].w->cols;
        const std::int64_t table_bytes = Lut::table_bytes(k);
        q_.resize(static_cast<std::size_t>(n_tokens * k));
        tables_.resize(static_cast<std::size_t>(n_tokens * table_bytes));
        acts_.resize(static_cast<std::size_t>(n_tokens));
        // Prefill: tokens on the threads. Decode: the one token's tables are built inside the
        // tasks' parallel region below, on every thread (built by one, the others waited:
        // ~2% of a decode step).
        const bool tables_in_region = n_tokens == 1 && threads_ > 1;
#pragma omp parallel for schedule(static) num_threads(threads_) if (n_tokens > 1)
        for (std::int64_t t = 0; t < n_tokens; ++t) {
            std::int8_t* q = q_.data() + t * k;
            acts_[static_cast<std::size_t>(t)] = quant::quantize_activations_i8(x + t * k, k, q);
            if (!tables_in_region) Lut::build_tables(q, k, tables_.data() + t * table_bytes);
        }
        lut_packed_.clear();
        for (const MatmulJob& j : jobs) lut_packed_.push_back(&lut_weights<Lut>(*j.w));
        // Tasks of whole row groups, sized as the I2_S tasks are (decode: ~256 kB of weights, so
        // each task's prefetch runs ahead of most of its reads).
        // (whole passes of the decode kernel: a task's last groups would go one at a time; in
        // prefill a task's groups share its tokens' tables in L2)
        const std::int64_t task_unit = Lut::kRows * Lut::kDecodeGroups;
        const std::int64_t rows_per_task =
            std::max<std::int64_t>(1, i2s_rows_per_task(k, n_tokens) / task_unit) * task_unit;
        tasks_.clear();
        dot_offsets_.clear();
        std::int64_t total_rows = 0;
        for (std::size_t j = 0; j < jobs.size(); ++j) {
            dot_offsets_.push_back(total_rows * n_tokens);
            for (std::int64_t r = 0; r < jobs[j].w->rows; r += rows_per_task)
                tasks_.push_back({j, r});
            total_rows += jobs[j].w->rows;
        }
        dots_.resize(static_cast<std::size_t>(total_rows * n_tokens));
        const auto n_tasks = static_cast<std::int64_t>(tasks_.size());
#pragma omp parallel num_threads(threads_)
        {
            if (tables_in_region) {
                // Column chunks of kTableCols (a whole number of every kernel's table units, and
                // of I2_S blocks): a chunk's tables start at table_bytes(its first column).
                constexpr std::int64_t kTableCols = 9 * 128;
                const std::int64_t chunks = (k + kTableCols - 1) / kTableCols;
                const std::int64_t me = omp_get_thread_num(), all = omp_get_num_threads();
                const std::int64_t c0 = std::min(k, me * chunks / all * kTableCols);
                const std::int64_t c1 = std::min(k, (me + 1) * chunks / all * kTableCols);
                if (c1 > c0)
                    Lut::build_tables(q_.data() + c0, c1 - c0,
                                      tables_.data() + Lut::table_bytes(c0));
#pragma omp barrier
            }
#pragma omp for schedule(dynamic, 1)
            for (std::int64_t i = 0; i < n_tasks; ++i)
                run_lut_task<Lut>(jobs, i, rows_per_task, n_tokens);
        }
    }

    // One task of matmul_lut: its rows' dots, then their outputs.
    template <class Lut>
    void run_lut_task(std::span<const MatmulJob> jobs, std::int64_t i, std::int64_t rows_per_task,
                      std::int64_t n_tokens) const {
        const auto& task = tasks_[static_cast<std::size_t>(i)];
        const WeightView& w = *jobs[task.job].w;
        const std::int64_t rows = std::min(rows_per_task, w.rows - task.first_row);
        std::int32_t* d = dots_.data() + dot_offsets_[task.job];
        Lut::dot_groups(*static_cast<const typename Lut::Weights*>(lut_packed_[task.job]),
                        task.first_row / Lut::kRows, (rows + Lut::kRows - 1) / Lut::kRows,
                        tables_.data(), n_tokens, d, w.rows);
        // The task's outputs while its sums are in this core's cache (a pass after the loop
        // would be one thread's, the other waiting). The tables hold (code - 1) * q: add S
        // back for the I2_S rule (exact integers).
        for (std::int64_t t = 0; t < n_tokens; ++t) {
            const quant::ActivationScale& act = acts_[static_cast<std::size_t>(t)];
            for (std::int64_t r = task.first_row; r < task.first_row + rows; ++r)
                jobs[task.job].y[t * w.rows + r] =
                    quant::i2s_output(d[t * w.rows + r] + act.sum, act, w.scale);
        }
    }

    // The lookup-table copy of an I2_S matrix, made once (keyed by its address: weights must
    // not change in place while the backend lives).
    template <class Lut>
    const typename Lut::Weights& lut_weights(const WeightView& w) const {
        auto& cache = Lut::cache(lut_caches_);
        {
            std::lock_guard<std::mutex> lock(lut_mutex_);
            if (auto it = cache.find(w.data); it != cache.end()) return *it->second;
        }
        auto packed = std::make_unique<typename Lut::Weights>(Lut::repack(w.data, w.rows, w.cols));
        std::lock_guard<std::mutex> lock(lut_mutex_);
        auto [it, inserted] = cache.emplace(w.data, std::move(packed));
        return *it->second;
    }

    int threads_;
    detail::I2sKernel i2s_;
    bool i2s_measured_ = false;
    LutKernel lut_ = LutKernel::None;
    mutable std::mutex lut_mutex_;
    mutable LutCaches lut_caches_;
    mutable std::vector<std::int8_t> tables_;
    mutable std::vector<const void*> lut_packed_;  // the jobs' Tl1Weights / Tl2Weights
    bool f16c_ = false;
    bool tq_avx2_ = false;
    bool q8_vnni_ = false;
    int head_prefetch_ = detail::kPrefetchBytes;  // F16 / Q8_0 GEMVs' look-ahead, bytes
    std::unique_ptr<Backend> reference_ = make_reference_backend(ActivationPrecision::Int8);
    // Scratch reused across calls (no allocation once sizes have been seen).
    mutable std::vector<std::int8_t> q_, q_arranged_, q_tiles_;
    mutable std::vector<detail::PreparedRow> prepared_;
    // Screening copies of F16 heads (prepare_screened_head), by their weights' address, and
    // matmul_argmax's candidate rows and their values.
    struct Screen {
        std::unique_ptr<detail::ScreenedHead> head;
        RowReader reader;
    };
    mutable std::unordered_map<const void*, Screen> screens_;
    mutable std::vector<std::int32_t> screened_rows_;
    mutable std::vector<float> screened_values_;
    detail::ScreenKernel screen_kernel_ = detail::best_screen_kernel();
    mutable std::vector<quant::ActivationScale> acts_;
    mutable std::vector<std::int32_t> dots_;
    mutable std::vector<std::int64_t> dot_offsets_;
    struct TaskSlot {
        std::size_t job;
        std::int64_t first_row;
    };
    mutable std::vector<TaskSlot> tasks_;
};

}  // namespace

std::vector<std::uint8_t> requantize_to_q8_0(const WeightView& w, int threads) {
    if (w.cols % 32 != 0)
        fail(ErrorCode::InvalidArgument, "Q8_0 needs rows that are multiples of 32");
    const quant::TypeTraits& source = quant::traits(w.type);
    if (!source.dequantize)
        fail(ErrorCode::Unsupported,
             "cannot re-quantize weights of type " + std::string(source.name));
    const std::uint64_t row_out = static_cast<std::uint64_t>(w.cols / 32 * 34);
    std::vector<std::uint8_t> out(row_out * static_cast<std::uint64_t>(w.rows));
    const int n_threads = threads > 0 ? threads : cpu_features().physical_cores;
#pragma omp parallel num_threads(n_threads)
    {
        std::vector<float> row(static_cast<std::size_t>(w.cols));
#pragma omp for schedule(static)
        for (std::int64_t r = 0; r < w.rows; ++r) {
            source.dequantize(w.row(r), w.cols, row.data());
            quant::quantize_q8_0(row.data(), w.cols,
                                 out.data() + static_cast<std::uint64_t>(r) * row_out);
        }
    }
    return out;
}

bool cpu_isa_supported(CpuIsa isa) {
    const CpuFeatures& f = cpu_features();
    switch (isa) {
        case CpuIsa::Best:
        case CpuIsa::Scalar:
            return true;
        case CpuIsa::Avx2:
            return f.avx2;
        case CpuIsa::Avx512Vnni:
            return f.avx512f && f.avx512bw && f.avx512vl && f.avx512vnni;
        case CpuIsa::Amx:
            return f.avx512f && f.avx512bw && f.avx512vl && f.avx512vnni && f.amx_int8;
        case CpuIsa::Avx512Vnni256:
            return f.avx512f && f.avx512bw && f.avx512vl && f.avx512vnni && f.gfni;
    }
    return false;
}

std::string fastest_ternary_kernel() {
    static const std::string fastest = [] {
        // A 2B4T-like slice larger than a core's L2 (3072 rows of 2560 I2_S weights, 2 MB), so
        // the bytes each kernel streams count as in decode: one token, then 8 (prefill).
        constexpr std::int64_t rows = 3072, cols = 2560;
        std::vector<std::uint8_t> weights(rows * cols / 4 + 32, 0x96);
        const WeightView w{TypeId::I2_S, weights.data(), rows, cols, 1.0f};
        std::vector<float> x(8 * cols), y(8 * rows);
        for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i % 17) - 8.0f;
        auto seconds = [&](const Backend& b) {
            b.prepare_weights({&w});
            double best = 1e30;
            for (int rep = 0; rep < 3; ++rep) {
                const auto start = std::chrono::steady_clock::now();
                b.matmul(w, x.data(), 1, y.data());
                b.matmul(w, x.data(), 8, y.data());
                best = std::min(
                    best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
                              .count());
            }
            return best;
        };
        // A lookup kernel must win by kMargin: its repack adds ~1 s to a 2b4t load, and where
        // decode streams from memory (whole models) its edge is its bytes, not this slice's
        // arithmetic — on the Zen 4 VM TL2 took 0.79x i2s's time here, but decoded 2b4t
        // -12%..+4% of i2s's tok/s and prefilled 5-15% slower (docs/performance.md).
        constexpr double kMargin = 0.7;
        const double i2s = seconds(*make_cpu_backend(1));
        std::string name = "i2s";
        double best = i2s * kMargin;
        const CpuFeatures& f = cpu_features();
        double tl1 = 0, tl2 = 0;
        if (f.avx2 && (tl1 = seconds(*make_tl1_backend(1))) < best) {
            best = tl1;
            name = "tl1";
        }
        if (f.avx512f && f.avx512bw && (tl2 = seconds(*make_tl2_backend(1))) < best) {
            best = tl2;
            name = "tl2";
        }
        log::debug(
            "--kernel auto: i2s {:.0f} us, tl1 {:.0f} us, tl2 {:.0f} us (a lookup kernel "
            "needs {:.0f}% of i2s's time or less) -> {}",
            i2s * 1e6, tl1 * 1e6, tl2 * 1e6, kMargin * 100, name);
        return name;
    }();
    return fastest;
}

std::unique_ptr<Backend> make_tl1_backend(int threads, CpuIsa isa) {
    const CpuFeatures& f = cpu_features();
    if (!f.avx2)
        fail(ErrorCode::Unsupported,
             "--kernel tl1 needs AVX2, which this CPU lacks; use --kernel i2s");
    const bool words = f.avx512f && f.avx512bw && isa != CpuIsa::Avx2;
    return std::make_unique<CpuBackend>(threads, detail::I2sKernel::Avx2,
                                        words ? LutKernel::Tl1Words : LutKernel::Tl1);
}

std::unique_ptr<Backend> make_tl2_backend(int threads) {
    const CpuFeatures& f = cpu_features();
    if (!(f.avx512f && f.avx512bw))
        fail(ErrorCode::Unsupported,
             "--kernel tl2 needs AVX-512BW (vpermw), which this CPU lacks; use --kernel tl1 "
             "or i2s");
    return std::make_unique<CpuBackend>(threads, detail::I2sKernel::Avx2, LutKernel::Tl2);
}

std::unique_ptr<Backend> make_cpu_backend(int threads, CpuIsa isa) {
    if (!cpu_isa_supported(isa)) isa = CpuIsa::Best;
    detail::I2sKernel kernel = detail::best_i2s_kernel(8);
    if (isa == CpuIsa::Amx) kernel = detail::I2sKernel::Amx;
    if (isa == CpuIsa::Avx512Vnni) kernel = detail::I2sKernel::Avx512Vnni;
    if (isa == CpuIsa::Avx512Vnni256) kernel = detail::I2sKernel::Vnni256;
    if (isa == CpuIsa::Avx2) kernel = detail::I2sKernel::Avx2;
    if (isa == CpuIsa::Scalar) kernel = detail::I2sKernel::Generic;
    // A forced AVX2 or scalar variant stays off AVX-512 everywhere (tests compare variants).
    return std::make_unique<CpuBackend>(threads, kernel, LutKernel::None,
                                        isa == CpuIsa::Best || isa == CpuIsa::Avx512Vnni ||
                                            isa == CpuIsa::Amx || isa == CpuIsa::Avx512Vnni256,
                                        isa == CpuIsa::Best);
}

}  // namespace bitnet::kernels

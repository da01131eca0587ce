#include <catch2/catch.hpp>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>
#include <vector>

#include "bitnet/kernels/backend.hpp"
#include "bitnet/kernels/threads.hpp"
#include "bitnet/models/gguf_file.hpp"
#include "bitnet/models/kv_cache.hpp"
#include "bitnet/models/synthetic_model.hpp"
#include "bitnet/models/transformer.hpp"

#include "in_memory_model.hpp"

// Every allocation in this test binary goes through these (the replaceable global operator
// new): while `counting` is on, each one is counted.
namespace {
std::atomic<bool> counting{false};
std::atomic<long> allocations{0};
}  // namespace

void* operator new(std::size_t size) {
    if (counting.load(std::memory_order_relaxed)) allocations.fetch_add(1);
    if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
    throw std::bad_alloc();
}
void operator delete(void* p) noexcept {
    std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
    std::free(p);
}

using namespace bitnet;

TEST_CASE("decoding allocates nothing after the prompt, up to the end of the context") {
    // 2 KV heads of 4 query heads: the grouped attention path
    const auto m = models::test::tiny_model(8, 2, 16, 0, 5, "decode-allocations.gguf");
    const auto& file = m.file;
    const models::Transformer model(file);
    for (const int threads : {1, 2}) {
        kernels::use_cpu_threads(threads);  // as the engine does for -t
        const auto backend = kernels::make_cpu_backend(threads);
        backend->prepare_weights(model.projection_weights());
        const std::int64_t context = 300;
        models::KvCache cache(model.config(), context, models::KvType::F16);
        std::vector<float> logits;
        // A prompt long enough that its attention runs on every thread, then one decoded token.
        std::vector<std::int32_t> prompt(32);
        for (std::size_t i = 0; i < prompt.size(); ++i)
            prompt[i] = static_cast<std::int32_t>(i * 7);
        model.forward(prompt, 0, cache, *backend, models::LogitsFor::LastPosition, logits);
        const std::int32_t first[1] = {7};
        model.forward(first, 32, cache, *backend, models::LogitsFor::LastPosition, logits);
        // The rest of the context, one token at a time: the scratch that grows with the positions
        // (attention's scores) must have been sized for the whole context already, and the
        // products take their job lists without a heap allocation.
        allocations = 0;
        counting = true;
        for (std::int64_t pos = 33; pos < context; ++pos) {
            const std::int32_t one[1] = {static_cast<std::int32_t>(pos % 300)};
            model.forward(one, pos, cache, *backend, models::LogitsFor::LastPosition, logits);
        }
        counting = false;
        INFO("threads " << threads);
        CHECK(allocations.load() == 0);
    }
}

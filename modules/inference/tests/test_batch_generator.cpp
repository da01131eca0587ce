#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <map>
#include <mutex>

#include "bitnet/common/timer.hpp"
#include "bitnet/inference/batch_generator.hpp"
#include "bitnet/inference/scheduler.hpp"
#include "model_files.hpp"

using namespace bitnet;

namespace {
std::unique_ptr<inference::Engine> load(const std::string& path, std::int64_t context = 128) {
    inference::EngineOptions o;
    o.model_path = path;
    o.context = context;
    o.threads = 2;
    o.device = "cpu";
    return inference::Engine::load(o);
}

inference::GenerationRequest request(const std::string& prompt, int n, std::uint64_t seed) {
    inference::GenerationRequest r;
    r.prompt = prompt;
    r.n_predict = n;
    r.sampling.seed = seed;
    r.sampling.temperature = seed == 0 ? 0.0f : 1.0f;
    return r;
}

const std::vector<std::string> kPrompts = {"the quick brown fox",       "hello",
                                           "once upon a time there",    "a",
                                           "numbers 1 2 3 4 5 6 7 8 9", "zzz"};
}  // namespace

TEST_CASE("batched decode gives every sequence exactly what it gets alone") {
    test::TempDir dir("batch");
    const std::string path = test::write_synthetic_model(dir, "tiny", 11);
    auto engine = load(path);
    // Alone: one Engine::generate per request (greedy and seeded sampling).
    std::vector<inference::GenerationResult> alone;
    for (std::size_t i = 0; i < kPrompts.size(); ++i)
        alone.push_back(engine->generate(request(kPrompts[i], 12 + static_cast<int>(i), i)));

    // Together: 4 slots for 6 requests, so sequences join as others finish.
    inference::BatchGenerator batch(*engine, 4);
    std::map<std::size_t, inference::GenerationResult> together;
    std::map<std::size_t, std::string> streamed;
    std::size_t next = 0;
    int max_batch = 0;
    while (together.size() < kPrompts.size()) {
        while (next < kPrompts.size() && batch.has_free_slot()) {
            const std::size_t i = next++;
            batch.add(
                request(kPrompts[i], 12 + static_cast<int>(i), i),
                [&streamed, i](std::string_view t) { streamed[i] += t; },
                [&together, i](inference::GenerationResult&& r) { together[i] = std::move(r); });
        }
        max_batch = std::max(max_batch, batch.step());
    }
    CHECK(max_batch == 4);
    CHECK(batch.active() == 0);
    for (std::size_t i = 0; i < kPrompts.size(); ++i) {
        INFO("request " << i);
        CHECK(together[i].tokens == alone[i].tokens);
        CHECK(together[i].text == alone[i].text);
        CHECK(streamed[i] == together[i].text);
        CHECK(together[i].stop_reason == alone[i].stop_reason);
    }
}

TEST_CASE("forward_batch logits equal one sequence at a time") {
    test::TempDir dir("batch-logits");
    const std::string path = test::write_synthetic_model(dir, "tiny", 12);
    auto engine = load(path);
    const auto& model = engine->model();
    const auto& config = model.config();
    // Three sequences with different prompt lengths, then one batched step at their ends.
    std::vector<std::vector<std::int32_t>> prompts = {{1, 5, 9}, {2}, {3, 4, 5, 6, 7, 8, 9}};
    std::vector<std::unique_ptr<models::KvCache>> caches;
    std::vector<float> logits;
    for (const auto& p : prompts) {
        caches.push_back(std::make_unique<models::KvCache>(config, 32, models::KvType::F16));
        model.forward(p, 0, *caches.back(), engine->backend(), models::LogitsFor::LastPosition,
                      logits);
    }
    std::vector<models::BatchToken> batch;
    for (std::size_t s = 0; s < prompts.size(); ++s)
        batch.push_back({static_cast<std::int32_t>(10 + s),
                         static_cast<std::int64_t>(prompts[s].size()), caches[s].get()});
    std::vector<float> batched;
    model.forward_batch(batch, engine->backend(), batched);
    const std::size_t vocab = config.vocab_size;
    REQUIRE(batched.size() == vocab * prompts.size());
    for (std::size_t s = 0; s < prompts.size(); ++s) {
        models::KvCache alone(config, 32, models::KvType::F16);
        auto tokens = prompts[s];
        tokens.push_back(static_cast<std::int32_t>(10 + s));
        model.forward(tokens, 0, alone, engine->backend(), models::LogitsFor::LastPosition, logits);
        double diff = 0, norm = 0;
        for (std::size_t v = 0; v < vocab; ++v) {
            const double d = batched[s * vocab + v] - logits[v];
            diff += d * d;
            norm += static_cast<double>(logits[v]) * logits[v];
        }
        CHECK(std::sqrt(diff / norm) < 1e-5);
    }
    batch[1].position = 32;  // past its cache
    CHECK_THROWS_WITH(model.forward_batch(batch, engine->backend(), batched),
                      Catch::Contains("does not fit"));
}

TEST_CASE("a cancelled or context-limited sequence frees its slot") {
    test::TempDir dir("batch-cancel");
    const std::string path = test::write_synthetic_model(dir, "tiny", 13);
    auto engine = load(path, 16);
    inference::BatchGenerator batch(*engine, 2);
    auto cancel = std::make_shared<std::atomic<bool>>(false);
    std::vector<inference::StopReason> reasons;
    auto done = [&](inference::GenerationResult&& r) { reasons.push_back(r.stop_reason); };
    auto long_request = request("abc", -1, 3);
    long_request.sampling.temperature = 3.0f;
    batch.add(long_request, {}, done, cancel);
    batch.add(long_request, {}, done);
    batch.step();
    batch.step();
    cancel->store(true);
    batch.step();
    REQUIRE_FALSE(reasons.empty());
    CHECK(reasons.front() == inference::StopReason::Cancelled);
    CHECK(batch.has_free_slot());
    for (int i = 0; i < 40 && batch.active() > 0; ++i) batch.step();
    REQUIRE(reasons.size() == 2);
    CHECK((reasons[1] == inference::StopReason::ContextFull ||
           reasons[1] == inference::StopReason::EndOfGeneration));
    CHECK_THROWS_WITH(batch.add(request(std::string(200, 'x'), 4, 1), {}, done),
                      Catch::Contains("tokens but"));
}

TEST_CASE("the scheduler answers every accepted request once and refuses beyond its queue") {
    test::TempDir dir("scheduler");
    const std::string path = test::write_synthetic_model(dir, "tiny", 14);
    auto engine = load(path);
    inference::Scheduler scheduler(*engine, {.parallel = 3, .max_queue = 5});
    std::mutex mutex;
    std::condition_variable cv;
    int done = 0, accepted = 0, refused = 0;
    for (int i = 0; i < 30; ++i) {
        inference::Scheduler::Job job;
        job.request = request(kPrompts[static_cast<std::size_t>(i) % kPrompts.size()], 8,
                              static_cast<std::uint64_t>(i));
        job.on_done = [&](inference::GenerationResult&&) {
            std::lock_guard<std::mutex> lock(mutex);
            ++done;
            cv.notify_all();
        };
        const auto admission = scheduler.submit(std::move(job));
        (admission == inference::Scheduler::Admission::Accepted ? accepted : refused)++;
    }
    CHECK(accepted >= 5);  // at least a full queue
    CHECK(accepted + refused == 30);
    {
        std::unique_lock<std::mutex> lock(mutex);
        REQUIRE(cv.wait_for(lock, std::chrono::seconds(60), [&] { return done == accepted; }));
    }
    const auto stats = scheduler.stats();
    CHECK(stats.completed == static_cast<std::uint64_t>(accepted));
    CHECK(stats.refused == static_cast<std::uint64_t>(refused));
    CHECK(stats.generated_tokens > 0);
    scheduler.shutdown(std::chrono::milliseconds(0));
    inference::Scheduler::Job late;
    late.request = request("x", 2, 1);
    CHECK(scheduler.submit(std::move(late)) == inference::Scheduler::Admission::ShuttingDown);
}

TEST_CASE("scheduler shutdown after its grace period cancels what is left, each told once") {
    test::TempDir dir("scheduler-stop");
    const std::string path = test::write_synthetic_model(dir, "small", 15);
    auto engine = load(path, 512);
    inference::Scheduler scheduler(*engine, {.parallel = 2, .max_queue = 8});
    std::atomic<int> done{0}, cancelled{0};
    for (int i = 0; i < 6; ++i) {
        inference::Scheduler::Job job;
        job.request = request("go on forever", -1, static_cast<std::uint64_t>(i + 1));
        job.request.sampling.temperature = 3.0f;
        job.on_done = [&](inference::GenerationResult&& r) {
            ++done;
            if (r.stop_reason == inference::StopReason::Cancelled) ++cancelled;
        };
        REQUIRE(scheduler.submit(std::move(job)) == inference::Scheduler::Admission::Accepted);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    Timer timer;
    scheduler.shutdown(std::chrono::milliseconds(50));
    CHECK(timer.seconds() < 10);  // bounded by the grace period and one step
    CHECK(done.load() == 6);
    CHECK(cancelled.load() >= 1);  // 6 sequences of up to 512 tokens cannot all end in 150 ms
}

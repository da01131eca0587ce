// Scheduler — the thread-safe front of a BatchGenerator for servers: requests are submitted
// from any thread into a bounded queue; one worker thread moves them into free slots and steps
// the batch (continuous batching). A full queue is refused at once (the server answers 503)
// instead of growing without bound.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>

#include "bitnet/inference/batch_generator.hpp"

namespace bitnet::inference {

struct SchedulerOptions {
    int parallel = 1;            // sequences decoded together
    std::size_t max_queue = 64;  // requests waiting for a slot; more are refused
};

struct SchedulerStats {
    std::size_t queued = 0, active = 0;
    std::uint64_t accepted = 0, refused = 0, completed = 0, cancelled = 0;
    std::uint64_t prompt_tokens = 0, generated_tokens = 0;
    double busy_seconds = 0;  // time spent stepping the batch
};

class Scheduler {
  public:
    struct Job {
        GenerationRequest request;
        std::vector<std::int32_t> prompt_tokens;  // optional: already tokenized
        TextCallback on_text;                     // runs on the worker thread; must not block
        DoneCallback on_done;                     // always called exactly once for an accepted job
        std::shared_ptr<std::atomic<bool>> cancel;
    };
    enum class Admission { Accepted, QueueFull, ShuttingDown };

    Scheduler(Engine& engine, const SchedulerOptions& options);
    ~Scheduler();  // shutdown with no grace
    Scheduler(const Scheduler&) = delete;
    Scheduler& operator=(const Scheduler&) = delete;

    Admission submit(Job job);
    // Stops admitting; running and queued requests may finish for up to `grace`, then the rest
    // end as Cancelled. Joins the worker. Idempotent.
    void shutdown(std::chrono::milliseconds grace);
    SchedulerStats stats() const;
    const SchedulerOptions& options() const { return options_; }

  private:
    void run();
    void finish_unstarted(Job& job);

    Engine& engine_;
    SchedulerOptions options_;
    BatchGenerator generator_;
    mutable std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<Job> queue_;
    bool stopping_ = false;
    std::chrono::steady_clock::time_point deadline_;
    SchedulerStats stats_;
    std::thread worker_;
};

}  // namespace bitnet::inference

#include "bitnet/inference/scheduler.hpp"

#include "bitnet/common/error.hpp"
#include "bitnet/common/log.hpp"
#include "bitnet/common/timer.hpp"

namespace bitnet::inference {

Scheduler::Scheduler(Engine& engine, const SchedulerOptions& options)
    : engine_(engine), options_(options), generator_(engine, options.parallel) {
    if (options.max_queue == 0)
        fail(ErrorCode::InvalidArgument, "the request queue must hold at least one request");
    worker_ = std::thread([this] { run(); });
}

Scheduler::~Scheduler() {
    shutdown(std::chrono::milliseconds(0));
}

Scheduler::Admission Scheduler::submit(Job job) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) return Admission::ShuttingDown;
    if (queue_.size() >= options_.max_queue) {
        ++stats_.refused;
        return Admission::QueueFull;
    }
    ++stats_.accepted;
    queue_.push_back(std::move(job));
    wake_.notify_one();
    return Admission::Accepted;
}

void Scheduler::shutdown(std::chrono::milliseconds grace) {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        if (!stopping_) {
            stopping_ = true;
            deadline_ = std::chrono::steady_clock::now() + grace;
        }
        wake_.notify_one();
    }
    if (worker_.joinable()) worker_.join();
}

SchedulerStats Scheduler::stats() const {
    std::lock_guard<std::mutex> lock(mutex_);
    SchedulerStats s = stats_;
    s.queued = queue_.size();
    return s;
}

void Scheduler::finish_unstarted(Job& job) {
    GenerationResult result;
    result.stop_reason = StopReason::Cancelled;
    if (job.on_done) job.on_done(std::move(result));
}

void Scheduler::run() {
    while (true) {
        std::unique_lock<std::mutex> lock(mutex_);
        const bool past_deadline = stopping_ && std::chrono::steady_clock::now() >= deadline_;
        if (past_deadline) {
            // Out of time: everything still waiting or running ends now, each told so.
            while (!queue_.empty()) {
                Job job = std::move(queue_.front());
                queue_.pop_front();
                ++stats_.cancelled;
                lock.unlock();
                finish_unstarted(job);
                lock.lock();
            }
            lock.unlock();
            generator_.cancel_all();
            return;
        }
        while (!queue_.empty() && generator_.has_free_slot()) {
            Job job = std::move(queue_.front());
            queue_.pop_front();
            // Count the finished request in the worker's own callback, then hand it on.
            DoneCallback done = [this, on_done = std::move(job.on_done)](GenerationResult&& r) {
                {
                    std::lock_guard<std::mutex> guard(mutex_);
                    ++(r.stop_reason == StopReason::Cancelled ? stats_.cancelled
                                                              : stats_.completed);
                    stats_.prompt_tokens += r.prompt_tokens.size();
                    stats_.generated_tokens += r.tokens.size();
                }
                if (on_done) on_done(std::move(r));
            };
            lock.unlock();
            try {
                generator_.add(job.request, std::move(job.on_text), done, job.cancel,
                               std::move(job.prompt_tokens));
            } catch (const std::exception& e) {
                log::warn("request refused by the generator: {}", e.what());
                job.on_done = {};
                GenerationResult result;
                result.stop_reason = StopReason::Cancelled;
                done(std::move(result));
            }
            lock.lock();
        }
        stats_.active = static_cast<std::size_t>(generator_.active());
        if (generator_.active() == 0) {
            if (stopping_ && queue_.empty()) return;
            if (stopping_)
                wake_.wait_until(lock, deadline_);
            else
                wake_.wait(lock, [&] { return !queue_.empty() || stopping_; });
            continue;
        }
        lock.unlock();
        Timer timer;
        try {
            generator_.step();
        } catch (const std::exception& e) {
            // A failing forward pass must not take the server down: end what was running.
            log::error("generation step failed: {}", e.what());
            generator_.cancel_all();
        }
        lock.lock();
        stats_.busy_seconds += timer.seconds();
    }
}

}  // namespace bitnet::inference

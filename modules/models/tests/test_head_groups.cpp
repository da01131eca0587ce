#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "bitnet/models/transformer.hpp"

using bitnet::models::HeadGroupJob;
using bitnet::models::plan_head_groups;

namespace {

// The longest thread's share when the jobs are dealt in order to whichever thread is free first
// (OpenMP's dynamic schedule with equal time per head), in units of one query head.
std::int64_t longest_thread(const std::vector<HeadGroupJob>& jobs, int threads) {
    std::vector<std::int64_t> load(static_cast<std::size_t>(threads), 0);
    for (const HeadGroupJob& j : jobs) *std::min_element(load.begin(), load.end()) += j.heads;
    return *std::max_element(load.begin(), load.end());
}

}  // namespace

TEST_CASE("attention's head groups cover every head once, within one KV head, evenly") {
    struct Shape {
        std::int64_t tokens, n_kv, group;
        int threads;
    };
    for (const Shape s : {Shape{1, 5, 4, 2}, Shape{1, 5, 4, 1}, Shape{1, 5, 4, 4},
                          Shape{1, 5, 4, 16}, Shape{1, 8, 1, 2}, Shape{1, 2, 6, 4},
                          Shape{3, 5, 4, 2}, Shape{64, 5, 4, 2}, Shape{1, 4, 8, 3}}) {
        std::vector<HeadGroupJob> jobs;
        plan_head_groups(s.tokens, s.n_kv, s.group, s.threads, jobs);
        INFO("tokens " << s.tokens << ", kv heads " << s.n_kv << ", group " << s.group
                       << ", threads " << s.threads);
        const std::int64_t n_head = s.n_kv * s.group;
        std::vector<int> seen(static_cast<std::size_t>(s.tokens * n_head), 0);
        for (const HeadGroupJob& j : jobs) {
            REQUIRE(j.heads >= 1);
            REQUIRE(s.group % j.heads == 0);
            CHECK(j.first_head / s.group == (j.first_head + j.heads - 1) / s.group);  // one KV head
            for (std::int64_t h = j.first_head; h < j.first_head + j.heads; ++h)
                ++seen[static_cast<std::size_t>(j.token * n_head + h)];
        }
        CHECK(std::all_of(seen.begin(), seen.end(), [](int n) { return n == 1; }));
        // Whole groups where there are enough of them for every thread; the longest thread then
        // carries at most one group more than an even share.
        const std::int64_t even = (s.tokens * n_head + s.threads - 1) / s.threads;
        CHECK(longest_thread(jobs, s.threads) <= even + s.group);
    }
    // Decode of the 2b4t shape on 2 threads: four whole groups and the fifth in halves, so each
    // thread takes 10 of the 20 heads.
    std::vector<HeadGroupJob> jobs;
    plan_head_groups(1, 5, 4, 2, jobs);
    CHECK(jobs.size() == 6);
    CHECK(longest_thread(jobs, 2) == 10);
    // Prefill: many tokens, whole groups only.
    plan_head_groups(64, 5, 4, 2, jobs);
    CHECK(jobs.size() == 320);
}

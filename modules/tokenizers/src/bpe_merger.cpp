#include "bpe_merger.hpp"

#include <algorithm>
#include <queue>

#include "bitnet/common/error.hpp"

namespace bitnet::tokenizers {
namespace {

constexpr std::uint64_t kEmpty = ~0ull;

std::uint64_t pair_key(std::int32_t left, std::int32_t right) {
    return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(left)) << 32) |
           static_cast<std::uint32_t>(right);
}

std::uint64_t mix(std::uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    return k;
}

// Pieces up to this many symbols use the quadratic scan (faster for short words).
constexpr std::size_t kSmallPiece = 48;

}  // namespace

BpeMerger::BpeMerger(const TokenizerData& data, const TokenIndex& index,
                     const std::string& source) {
    struct Entry {
        std::uint64_t key;
        PairInfo info;
    };
    std::vector<Entry> entries;
    if (!data.merges.empty()) {
        entries.reserve(data.merges.size());
        for (std::size_t rank = 0; rank < data.merges.size(); ++rank) {
            const std::string& m = data.merges[rank];
            const auto space = m.find(' ');
            auto bad = [&](const std::string& why) {
                fail(ErrorCode::InvalidFormat, source + ": merge " + std::to_string(rank) + " '" +
                                                   m + "' " + why +
                                                   "; the tokenizer data is corrupt");
            };
            if (space == std::string::npos || space == 0 || space + 1 >= m.size())
                bad("is not two tokens separated by a space");
            const std::string_view left(m.data(), space),
                right(m.data() + space + 1, m.size() - space - 1);
            const auto l = index.find(left), r = index.find(right);
            if (l == index.end()) bad("references unknown token '" + std::string(left) + "'");
            if (r == index.end()) bad("references unknown token '" + std::string(right) + "'");
            const auto merged = index.find(std::string(left) + std::string(right));
            if (merged == index.end())
                bad("produces '" + std::string(left) + std::string(right) +
                    "', which is not a token");
            entries.push_back(
                {pair_key(l->second, r->second), {static_cast<float>(rank), merged->second}});
        }
    } else if (!data.scores.empty()) {
        // SentencePiece without merges: every split of every token into two tokens is a pair.
        for (std::size_t id = 0; id < data.tokens.size(); ++id) {
            const std::string& t = data.tokens[id];
            if (data.token_types.size() == data.tokens.size() && data.token_types[id] != 1)
                continue;
            for (std::size_t cut = 1; cut < t.size(); ++cut) {
                const auto l = index.find(std::string_view(t).substr(0, cut));
                const auto r = index.find(std::string_view(t).substr(cut));
                if (l != index.end() && r != index.end())
                    entries.push_back({pair_key(l->second, r->second),
                                       {-data.scores[id], static_cast<std::int32_t>(id)}});
            }
        }
    }
    std::size_t capacity = 16;
    while (capacity < entries.size() * 2) capacity *= 2;
    keys_.assign(capacity, kEmpty);
    values_.resize(capacity);
    mask_ = capacity - 1;
    for (const Entry& e : entries) {
        std::uint64_t slot = mix(e.key) & mask_;
        while (keys_[slot] != kEmpty && keys_[slot] != e.key) slot = (slot + 1) & mask_;
        // The first (highest-priority) occurrence of a pair wins.
        if (keys_[slot] == kEmpty || e.info.priority < values_[slot].priority) {
            keys_[slot] = e.key;
            values_[slot] = e.info;
        }
    }
}

const BpeMerger::PairInfo* BpeMerger::find(std::int32_t left, std::int32_t right) const {
    if (left < 0 || right < 0) return nullptr;
    const std::uint64_t key = pair_key(left, right);
    std::uint64_t slot = mix(key) & mask_;
    while (keys_[slot] != kEmpty) {
        if (keys_[slot] == key) return &values_[slot];
        slot = (slot + 1) & mask_;
    }
    return nullptr;
}

void BpeMerger::merge(std::vector<Symbol>& symbols) const {
    if (symbols.size() < 2) return;
    if (symbols.size() <= kSmallPiece) {
        merge_small(symbols);
    } else {
        merge_large(symbols);
    }
}

void BpeMerger::merge_small(std::vector<Symbol>& symbols) const {
    // pair[i] describes the merge of symbols[i] and symbols[i+1] (nullptr: none).
    thread_local std::vector<const PairInfo*> pair;
    pair.resize(symbols.size());
    for (std::size_t i = 0; i + 1 < symbols.size(); ++i)
        pair[i] = find(symbols[i].id, symbols[i + 1].id);
    pair[symbols.size() - 1] = nullptr;
    while (true) {
        std::size_t best = symbols.size();
        for (std::size_t i = 0; i + 1 < symbols.size(); ++i)
            if (pair[i] && (best == symbols.size() || pair[i]->priority < pair[best]->priority))
                best = i;
        if (best == symbols.size()) return;
        symbols[best] = {pair[best]->result, symbols[best].begin, symbols[best + 1].end};
        symbols.erase(symbols.begin() + static_cast<std::ptrdiff_t>(best) + 1);
        pair.erase(pair.begin() + static_cast<std::ptrdiff_t>(best) + 1);
        pair[best] =
            best + 1 < symbols.size() ? find(symbols[best].id, symbols[best + 1].id) : nullptr;
        if (best > 0) pair[best - 1] = find(symbols[best - 1].id, symbols[best].id);
    }
}

void BpeMerger::merge_large(std::vector<Symbol>& symbols) const {
    // Linked list over the symbols plus a min-heap of candidate pairs (priority, left index).
    // Stale heap entries (a neighbour changed since) are skipped by re-checking the pair.
    const std::size_t n = symbols.size();
    std::vector<std::int64_t> prev(n), next(n);
    std::vector<bool> alive(n, true);
    for (std::size_t i = 0; i < n; ++i) {
        prev[i] = static_cast<std::int64_t>(i) - 1;
        next[i] = i + 1 < n ? static_cast<std::int64_t>(i + 1) : -1;
    }
    struct Candidate {
        float priority;
        std::size_t left;
        std::int32_t left_id, right_id;
        bool operator>(const Candidate& o) const {
            return priority != o.priority ? priority > o.priority : left > o.left;
        }
    };
    std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> heap;
    auto push = [&](std::size_t left) {
        if (next[left] < 0) return;
        const auto right = static_cast<std::size_t>(next[left]);
        if (const PairInfo* p = find(symbols[left].id, symbols[right].id))
            heap.push({p->priority, left, symbols[left].id, symbols[right].id});
    };
    for (std::size_t i = 0; i + 1 < n; ++i) push(i);
    while (!heap.empty()) {
        const Candidate c = heap.top();
        heap.pop();
        if (!alive[c.left] || next[c.left] < 0) continue;
        const auto right = static_cast<std::size_t>(next[c.left]);
        if (symbols[c.left].id != c.left_id || symbols[right].id != c.right_id) continue;
        const PairInfo* p = find(c.left_id, c.right_id);
        symbols[c.left] = {p->result, symbols[c.left].begin, symbols[right].end};
        alive[right] = false;
        next[c.left] = next[right];
        if (next[right] >= 0)
            prev[static_cast<std::size_t>(next[right])] = static_cast<std::int64_t>(c.left);
        push(c.left);
        if (prev[c.left] >= 0) push(static_cast<std::size_t>(prev[c.left]));
    }
    std::size_t out = 0;
    for (std::size_t i = 0; i < n; ++i)
        if (alive[i]) symbols[out++] = symbols[i];
    symbols.resize(out);
}

}  // namespace bitnet::tokenizers

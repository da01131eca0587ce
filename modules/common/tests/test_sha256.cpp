#include <catch2/catch.hpp>

#include <string>

#include "bitnet/common/sha256.hpp"

using bitnet::Sha256;

namespace {
std::string digest(const std::string& s) {
    Sha256 h;
    h.update(s.data(), s.size());
    return Sha256::hex(h.finish());
}
}  // namespace

TEST_CASE("SHA-256 of the FIPS 180-4 test vectors") {
    CHECK(digest("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    CHECK(digest("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    CHECK(digest("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
          "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    CHECK(digest(std::string(1000000, 'a')) ==
          "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST_CASE("SHA-256 is the same however the input is split") {
    const std::string text(1000, 'x');
    Sha256 h;
    for (std::size_t i = 0; i < text.size(); i += 37)
        h.update(text.data() + i, std::min<std::size_t>(37, text.size() - i));
    CHECK(Sha256::hex(h.finish()) == digest(text));
}

#include <catch2/catch.hpp>

#include "../src/stop_strings.hpp"

using bitnet::inference::StopStringFilter;

TEST_CASE("a stop string split across pushes is caught and removed") {
    StopStringFilter f({"</end>"});
    bool stopped = false;
    std::string out = f.push("hello </e", stopped);
    CHECK_FALSE(stopped);
    CHECK(out == "hello ");  // "</e" is held back: it may start the stop string
    out = f.push("nd> more", stopped);
    CHECK(stopped);
    CHECK(out.empty());
}

TEST_CASE("held-back text that turns out not to be a stop string is released") {
    StopStringFilter f({"STOP"});
    bool stopped = false;
    CHECK(f.push("ab ST", stopped) == "ab ");
    CHECK(f.push("ART", stopped) == "START");
    CHECK_FALSE(stopped);
    CHECK(f.push("x S", stopped) == "x ");
    CHECK(f.flush() == "S");
}

TEST_CASE("the earliest of several stop strings wins") {
    StopStringFilter f({"bb", "a"});
    bool stopped = false;
    CHECK(f.push("xxabb", stopped) == "xx");
    CHECK(stopped);
}

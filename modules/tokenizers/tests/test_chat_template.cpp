#include <catch2/catch.hpp>

#include "bitnet/common/error.hpp"
#include "bitnet/tokenizers/chat_template.hpp"
#include "tokenizer_fixtures.hpp"

using namespace bitnet;
using tokenizers::ChatFormat;

TEST_CASE("the 2B4T format renders roles as 'Role: text<|eot_id|>' with an Assistant prompt") {
    const std::string out = tokenizers::render_chat(
        ChatFormat::Bitnet, {{"system", "Be brief."}, {"user", " Hi there \n"}}, true);
    CHECK(out == "<|begin_of_text|>System: Be brief.<|eot_id|>User: Hi there<|eot_id|>Assistant: ");
}

TEST_CASE("the LLaMA 3 format uses header ids and a blank line") {
    const std::string out =
        tokenizers::render_chat(ChatFormat::Llama3, {{"user", "Hi"}, {"assistant", "Hello"}}, true);
    CHECK(out ==
          "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
          "<|start_header_id|>assistant<|end_header_id|>\n\nHello<|eot_id|>"
          "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

TEST_CASE("chat templates are recognised by their markers") {
    CHECK(tokenizers::detect_chat_format(
              "{{ '<|start_header_id|>' + role + '<|end_header_id|>' }}") == ChatFormat::Llama3);
    CHECK(tokenizers::detect_chat_format(
              "{% set content = message['role'] | capitalize + ': ' + message['content'] | trim + "
              "'<|eot_id|>' %}"
              "{% if add_generation_prompt %}{{ 'Assistant: ' }}{% endif %}") ==
          ChatFormat::Bitnet);
    CHECK_THROWS_WITH(tokenizers::detect_chat_format("{{ '<|im_start|>' }}"),
                      Catch::Contains("--chat-format"));
    CHECK_THROWS_WITH(tokenizers::detect_chat_format(""), Catch::Contains("--chat-format"));
    CHECK(tokenizers::chat_format_from_name("bitnet") == ChatFormat::Bitnet);
    CHECK_FALSE(tokenizers::chat_format_from_name("chatml"));
    CHECK_THROWS_AS(tokenizers::render_chat(ChatFormat::Bitnet, {{"robot", "x"}}, false), Error);
}

TEST_CASE(
    "the LLaMA 3 fixture's template is detected and its rendering tokenizes to header tokens") {
    const auto* tok = test::llama3_tokenizer();
    if (!tok) {
        WARN("SKIPPED: ../shared tokenizer fixtures absent");
        return;
    }
    const auto format = tokenizers::detect_chat_format(tok->data().chat_template);
    CHECK(format == ChatFormat::Llama3);
    const auto ids =
        tok->encode(tokenizers::render_chat(format, {{"user", "Hi"}}, true), false, true);
    REQUIRE(ids.size() >= 4);
    CHECK(ids[0] == 128000);
    CHECK(ids[1] == 128006);
    CHECK(ids.back() == 271);  // "\n\n" after <|end_header_id|>
    CHECK(ids[ids.size() - 2] == 128007);
}

package dev.ferry.core.chat;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.core.chat.ToolCalls.Format;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Reading tool calls back out of a reply, in the form the chat template asked for. */
class ToolCallsTest {

    static final String WEATHER = "{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}";

    static void assertWeather(ToolCalls.Call c) {
        assertThat(c.name()).isEqualTo("get_weather");
        assertThat(c.arguments()).isEqualTo("{\"city\":\"Paris\"}");
        assertThat(c.id()).startsWith("call_").hasSize(29);
    }

    // ---- which form -------------------------------------------------------------------------------------------

    @Test
    void theTemplateSaysWhichFormItsModelWrites() {
        assertThat(Format.of("... within <tool_call></tool_call> XML tags ...")).contains(Format.HERMES);
        assertThat(Format.of("{{- '[TOOL_CALLS][' }}")).contains(Format.MISTRAL);
        assertThat(Format.of("Respond in the format {\"name\": function name, \"parameters\": dictionary of argument "
                + "name and its value}.")).contains(Format.LLAMA_JSON);
        assertThat(Format.of("{{ messages }}")).isEmpty();
        assertThat(Format.of(null)).isEmpty();
    }

    // ---- Hermes (Qwen 2.5/3) ------------------------------------------------------------------------------------

    @Test
    void hermesCallIsItsNameAndArgumentsAndTheTextAroundItIsTheContent() {
        ToolCalls.Parsed p = Format.HERMES.parse("Let me look.\n<tool_call>\n" + WEATHER + "\n</tool_call>");
        assertThat(p.content()).isEqualTo("Let me look.");
        assertThat(p.calls()).singleElement().satisfies(ToolCallsTest::assertWeather);
    }

    @Test
    void hermesCallsComeInTheirOrderWithDistinctIds() {
        ToolCalls.Parsed p = Format.HERMES.parse("<tool_call>{\"name\": \"a\", \"arguments\": {}}</tool_call>"
                + "<tool_call>{\"name\": \"b\", \"arguments\": {\"x\": 1}}</tool_call>");
        assertThat(p.content()).isEmpty();
        assertThat(p.calls()).extracting(ToolCalls.Call::name).containsExactly("a", "b");
        assertThat(p.calls().get(0).id()).isNotEqualTo(p.calls().get(1).id());
    }

    @Test
    void argumentsWrittenAsAJsonStringAreTakenAsTheyAre() {
        ToolCalls.Parsed p = Format.HERMES.parse(
                "<tool_call>{\"name\": \"f\", \"arguments\": \"{\\\"q\\\": 2}\"}</tool_call>");
        assertThat(p.calls()).singleElement().extracting(ToolCalls.Call::arguments).isEqualTo("{\"q\": 2}");
    }

    @Test
    void aHermesBlockThatIsNotACallStaysInTheText() {
        String text = "<tool_call>not json</tool_call> and <tool_call>{\"arguments\": {}}</tool_call>";
        ToolCalls.Parsed p = Format.HERMES.parse(text);
        assertThat(p.calls()).isEmpty();
        assertThat(p.content()).isEqualTo(text);
    }

    @Test
    void anUnclosedHermesCallAtTheEndIsStillRead() {
        ToolCalls.Parsed p = Format.HERMES.parse("ok <tool_call>{\"name\": \"f\", \"arguments\": {\"a\": true}}");
        assertThat(p.content()).isEqualTo("ok");
        assertThat(p.calls()).singleElement().extracting(ToolCalls.Call::arguments).isEqualTo("{\"a\":true}");
    }

    @Test
    void whileStreamingHermesHoldsTextFromAPossibleCallOn() {
        assertThat(Format.HERMES.holdFrom("plain text")).isEqualTo(10);
        assertThat(Format.HERMES.holdFrom("text <tool")).isEqualTo(5);
        assertThat(Format.HERMES.holdFrom("text <")).isEqualTo(5);
        assertThat(Format.HERMES.holdFrom("a <tool_call>{\"na")).isEqualTo(2);
        assertThat(Format.HERMES.holdFrom("a < b")).isEqualTo(5);
    }

    @Test
    void aStreamedReplyReleasesItsTextAndHoldsItsCallWhole() {
        ToolCalls.Stream stream = new ToolCalls.Stream(Format.HERMES);
        StringBuilder out = new StringBuilder();
        for (String delta : List.of("Let me", " look.", " <to", "ol_call>{\"name\": \"f\",", " \"arguments\": {}}",
                "</tool_call>")) {
            out.append(stream.release(delta));
        }
        assertThat(out.toString()).isEqualTo("Let me look. ");
        assertThat(Format.HERMES.parse(stream.held()).calls()).singleElement().extracting(ToolCalls.Call::name)
                .isEqualTo("f");
    }

    // ---- Mistral ------------------------------------------------------------------------------------------------

    @Test
    void mistralCallsFollowTheirMarkerAsAJsonArray() {
        ToolCalls.Parsed p = Format.MISTRAL.parse("[TOOL_CALLS][" + WEATHER + ", {\"name\": \"b\", \"arguments\": {}}]");
        assertThat(p.content()).isEmpty();
        assertThat(p.calls()).hasSize(2).first().satisfies(ToolCallsTest::assertWeather);
    }

    @Test
    void mistralCallsAreReadWhenDecodingLeftTheSpecialMarkerOut() {
        assertThat(Format.MISTRAL.parse(" [" + WEATHER + "]").calls()).singleElement()
                .satisfies(ToolCallsTest::assertWeather);
    }

    @Test
    void aMistralReplyThatIsNoCallListIsText() {
        assertThat(Format.MISTRAL.parse("[1, 2] are numbers").calls()).isEmpty();
        assertThat(Format.MISTRAL.parse("[{\"city\": \"Paris\"}]").calls()).isEmpty();
        assertThat(Format.MISTRAL.parse("Sunny.").content()).isEqualTo("Sunny.");
    }

    @Test
    void whileStreamingMistralHoldsAReplyThatOpensLikeACall() {
        assertThat(Format.MISTRAL.holdFrom("[TOOL_CA")).isZero();
        assertThat(Format.MISTRAL.holdFrom("  [{\"na")).isEqualTo(2);
        assertThat(Format.MISTRAL.holdFrom("Sure. [TOOL")).isEqualTo(6);
        assertThat(Format.MISTRAL.holdFrom("Sunny today")).isEqualTo(11);
    }

    // ---- Llama 3.1–3.3 JSON -------------------------------------------------------------------------------------

    @Test
    void llamaCallIsTheWholeReplyWithParameters() {
        ToolCalls.Parsed p = Format.LLAMA_JSON.parse(
                "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\"}}");
        assertThat(p.content()).isEmpty();
        assertThat(p.calls()).singleElement().satisfies(ToolCallsTest::assertWeather);
    }

    @Test
    void llamaCallsMayFollowThePythonTagAndBeSeparatedBySemicolons() {
        ToolCalls.Parsed p = Format.LLAMA_JSON.parse("<|python_tag|>{\"name\": \"a\", \"parameters\": {}}; "
                + "{\"name\": \"b\", \"parameters\": {\"x\": 1}}");
        assertThat(p.calls()).extracting(ToolCalls.Call::name).containsExactly("a", "b");
    }

    @Test
    void aLlamaReplyThatIsNotOnlyCallsIsText() {
        String text = "The answer is {\"name\": \"x\"}";
        assertThat(Format.LLAMA_JSON.parse(text).calls()).isEmpty();
        assertThat(Format.LLAMA_JSON.parse(text).content()).isEqualTo(text);
    }

    @Test
    void whileStreamingLlamaHoldsAReplyThatOpensLikeACall() {
        assertThat(Format.LLAMA_JSON.holdFrom("  ")).isZero();
        assertThat(Format.LLAMA_JSON.holdFrom(" {\"name")).isEqualTo(1);
        assertThat(Format.LLAMA_JSON.holdFrom("<|py")).isZero();
        assertThat(Format.LLAMA_JSON.holdFrom("Paris is")).isEqualTo(8);
    }
}

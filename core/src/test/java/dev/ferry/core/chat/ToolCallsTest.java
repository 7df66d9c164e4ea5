package dev.ferry.core.chat;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

/** Reading Hermes-form tool calls ({@code <tool_call>{json}</tool_call>}) back out of a reply. */
class ToolCallsTest {

    @Test
    void aCallIsItsNameAndArgumentsAndTheTextAroundItIsTheContent() {
        ToolCalls.Parsed p = ToolCalls.parse("Let me look.\n<tool_call>\n{\"name\": \"get_weather\", "
                + "\"arguments\": {\"city\": \"Paris\"}}\n</tool_call>");
        assertThat(p.content()).isEqualTo("Let me look.");
        assertThat(p.calls()).singleElement().satisfies(c -> {
            assertThat(c.name()).isEqualTo("get_weather");
            assertThat(c.arguments()).isEqualTo("{\"city\":\"Paris\"}");
            assertThat(c.id()).startsWith("call_").hasSize(29);
        });
    }

    @Test
    void severalCallsComeInTheirOrderWithDistinctIds() {
        ToolCalls.Parsed p = ToolCalls.parse("<tool_call>{\"name\": \"a\", \"arguments\": {}}</tool_call>"
                + "<tool_call>{\"name\": \"b\", \"arguments\": {\"x\": 1}}</tool_call>");
        assertThat(p.content()).isEmpty();
        assertThat(p.calls()).extracting(ToolCalls.Call::name).containsExactly("a", "b");
        assertThat(p.calls().get(0).id()).isNotEqualTo(p.calls().get(1).id());
    }

    @Test
    void argumentsWrittenAsAJsonStringAreTakenAsTheyAre() {
        ToolCalls.Parsed p = ToolCalls.parse("<tool_call>{\"name\": \"f\", \"arguments\": \"{\\\"q\\\": 2}\"}</tool_call>");
        assertThat(p.calls()).singleElement().extracting(ToolCalls.Call::arguments).isEqualTo("{\"q\": 2}");
    }

    @Test
    void aBlockThatIsNotACallStaysInTheText() {
        String text = "<tool_call>not json</tool_call> and <tool_call>{\"arguments\": {}}</tool_call>";
        ToolCalls.Parsed p = ToolCalls.parse(text);
        assertThat(p.calls()).isEmpty();
        assertThat(p.content()).isEqualTo(text);
    }

    @Test
    void anUnclosedCallAtTheEndIsStillRead() {
        ToolCalls.Parsed p = ToolCalls.parse("ok <tool_call>{\"name\": \"f\", \"arguments\": {\"a\": true}}");
        assertThat(p.content()).isEqualTo("ok");
        assertThat(p.calls()).singleElement().extracting(ToolCalls.Call::arguments).isEqualTo("{\"a\":true}");
    }

    @Test
    void whileStreamingTextFromAPossibleCallOnIsHeld() {
        assertThat(ToolCalls.holdFrom("plain text")).isEqualTo(10);
        assertThat(ToolCalls.holdFrom("text <tool")).isEqualTo(5);
        assertThat(ToolCalls.holdFrom("text <")).isEqualTo(5);
        assertThat(ToolCalls.holdFrom("a <tool_call>{\"na")).isEqualTo(2);
        assertThat(ToolCalls.holdFrom("a < b")).isEqualTo(5);
    }

    @Test
    void onlyTemplatesThatWriteToolCallTagsGetTheirRepliesRead() {
        assertThat(ToolCalls.readable("... within <tool_call></tool_call> tags ...")).isTrue();
        assertThat(ToolCalls.readable("{{ messages }}")).isFalse();
        assertThat(ToolCalls.readable(null)).isFalse();
    }
}

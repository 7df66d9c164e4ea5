package dev.ferry.core.chat;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * Constructs of Python's Jinja that Hugging Face chat templates use (Qwen3's, Llama 3's, Mistral's), rendered as
 * Python's Jinja renders them; each expected string is what jinja2 3.1 with {@code trim_blocks} and
 * {@code lstrip_blocks} and transformers' {@code tojson} gives for the same template and variables.
 */
class JinjaCompatibilityTest {

    private static String render(String source, List<Map<String, Object>> messages, Map<String, Object> extra) {
        return ChatTemplate.of(source, Map.of("bos_token", "<s>", "eos_token", "</s>"))
                .render(messages, true, null, extra);
    }

    private static final List<Map<String, Object>> CONVERSATION = List.of(
            Map.of("role", "system", "content", "Be brief."),
            Map.of("role", "user", "content", "  <tool_response>x</tool_response>  "),
            Map.of("role", "assistant", "content", "<think>\nplan\n</think>\n\nDone."));

    @Test
    void pythonStringMethods() {
        String t = "{{ messages[2].content.split('</think>')[-1].lstrip('\\n') }}|"
                + "{{ messages[2].content.split('</think>')[0].rstrip('\\n').split('<think>')[-1].lstrip('\\n') }}|"
                + "{% if messages[1].content.strip().startswith('<tool_response>') %}T{% endif %}|"
                + "{% if messages[1].content.strip().endswith(('</x>', '</tool_response>')) %}T{% endif %}|"
                + "{{ messages[0].content.upper() }}{{ messages[0].content.lower() }}|{{ 'a b'.title() }}|"
                + "{{ ' x '.strip() }}|{{ 'xxhixx'.strip('x') }}|{{ 'a,b,c'.split(',', 1)[1] }}|{{ ' a  b '.split()|length }}|"
                + "{{ 'abcabc'.replace('b', 'B') }}";
        assertThat(render(t, CONVERSATION, Map.of()))
                .isEqualTo("Done.|plan|T|T|BE BRIEF.be brief.|A B|x|hi|b,c|2|aBcaBc");
    }

    @Test
    void namespaceWithAFilteredKeywordValueAndAReversedLoop() {
        String t = "{%- set ns = namespace(found=false, last=messages|length - 1) %}"
                + "{%- for m in messages[::-1] %}{%- set i = (messages|length - 1) - loop.index0 %}"
                + "{%- if not ns.found and m.role == 'user' %}{%- set ns.found = true %}{%- set ns.last = i %}"
                + "{%- endif %}{{ m.role[:1] }}{%- endfor %}:{{ ns.last }}";
        assertThat(render(t, CONVERSATION, Map.of())).isEqualTo("aus:1");
    }

    @Test
    void whitespaceControlTrimBlocksAndLstripBlocks() {
        String t = "{{ bos_token }}\n{% for m in messages %}\n    {{- m['role'] + ': ' }}\n    {% if loop.last %}"
                + "last{% endif %}\n{% endfor %}\n{% if add_generation_prompt %}\n{{- '>' }}\n{% endif %}";
        assertThat(render(t, CONVERSATION, Map.of())).isEqualTo("<s>\nsystem: \nuser: \nassistant: \nlast>\n");
    }

    @Test
    void testsAndDefinedVariables() {
        String t = "{% if messages[0].content is string %}1{% endif %}{% if messages is string %}2{% endif %}"
                + "{% if tools is defined %}3{% endif %}{% if tools is not defined %}4{% endif %}"
                + "{% if enable_thinking is defined and enable_thinking is false %}5{% endif %}{{ messages[0]['role'] }}";
        assertThat(render(t, CONVERSATION, Map.of("enable_thinking", false))).isEqualTo("145system");
    }

    @Test
    void tojsonWritesAsPythonsJsonDumps() {
        String t = "{{ messages[0] | tojson }}|{{ {'a': [1, 2.5, 'ü\"'], 'b': none} | tojson }}|"
                + "{{ {'k': 1} | tojson(indent=2) }}";
        Map<String, Object> message = new java.util.LinkedHashMap<>(); // a dict keeps its insertion order
        message.put("role", "user");
        message.put("content", "x");
        assertThat(render(t, List.of(message), Map.of()))
                .isEqualTo("{\"role\": \"user\", \"content\": \"x\"}|{\"a\": [1, 2.5, \"ü\\\"\"], \"b\": null}|"
                        + "{\n  \"k\": 1\n}");
    }

    @Test
    void raiseExceptionRefusesWithTheTemplatesMessage() {
        String t = "{% if messages[0].role != 'user' %}{{ raise_exception('Conversations must start with user') }}"
                + "{% endif %}ok";
        assertThatThrownBy(() -> render(t, CONVERSATION, Map.of()))
                .isInstanceOf(ChatTemplateException.class)
                .hasMessageContaining("Conversations must start with user");
    }

    @Test
    void aBrokenTemplateIsANamedError() {
        assertThatThrownBy(() -> render("{% for m in messages %}{{ m.role }}", CONVERSATION, Map.of()))
                .isInstanceOf(ChatTemplateException.class)
                .hasMessageContaining("cannot render the chat template");
    }
}

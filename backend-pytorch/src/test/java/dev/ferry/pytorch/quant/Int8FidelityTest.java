package dev.ferry.pytorch.quant;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.ferry.core.testing.Fixtures;
import dev.ferry.pytorch.DjlBackend;
import java.io.IOException;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * int8 weights against the same model unquantized, 64 greedy tokens after each fixture's golden prompt
 * ({@link Int8Fidelity}; the numbers are docs/quantization.md's table, printed by {@code Int8FidelityReport}).
 *
 * <p>Where the bounds come from. Each weight moves by at most half its row's scale, 1/254 of the row's largest
 * magnitude; for these Gaussian-initialised weights (row max ≈ 3σ) a rounding error is uniform in ±s/2, RMS
 * s/√12 ≈ 0.7% of σ, so each projection's output moves by ≈ 0.7% of its size, and 4 layers of 3–4 projections in a
 * row compound that to a few percent at most; the mean logit error measured is 0.15–0.6% of the logit range for the
 * dense fixtures. Bounds are the worst measured over the fixtures of each kind (docs/quantization.md's table, nine
 * fixtures; dense: max 5.3%, mean 0.56% of the range, agreement 89.1%; MoE, tiny-mixtral: max 19.1%, mean 1.0%,
 * agreement 85.9%) with about 1.5× room on the errors and a few tokens on agreement for another CPU's summation
 * order, no more; five of the nine run here to keep the suite short (tiny-mixtral, the MoE worst, is in the table).
 * MoE fixtures get their own bounds: a small change in a router's input can swap one of the top-k experts for a
 * token, which moves that token's logits by much more than rounding does (the router itself is not quantized).
 * Top-1 agreement is below 1 on these fixtures because they are random: with 256 near-uniform logits the best two
 * are often closer than the error (the reason tiny models are a worst case, see the docs).
 */
class Int8FidelityTest {

    static DjlBackend backend;

    @BeforeAll
    static void start() {
        backend = new DjlBackend();
    }

    @AfterAll
    static void stop() {
        backend.close();
    }

    static long[] prompt(String fixture) throws IOException {
        var ids = new ObjectMapper().readTree(Fixtures.model(fixture).resolve("golden.json").toFile()).get("input_ids");
        long[] out = new long[ids.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = ids.get(i).asLong();
        }
        return out;
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource({
            "tiny-llama,     0.08, 0.009, 0.85",
            "tiny-qwen3,     0.08, 0.009, 0.85",
            "tiny-gemma2,    0.08, 0.009, 0.85",
            "tiny-phi3,      0.08, 0.009, 0.85",
            "tiny-qwen3-moe, 0.30, 0.016, 0.80"})
    void logitsStayWithinTheMeasuredBoundsOfTheUnquantizedModel(String fixture, double maxRel, double meanRel,
                                                                double agreement) throws IOException {
        Int8Fidelity f = Int8Fidelity.measure(Fixtures.model(fixture), prompt(fixture), 64, null, backend);
        System.out.printf("%s int8: max |Δlogit| %.4f, mean %.5f of the range %.2f; top-1 agreement %.3f; greedy "
                + "equal for %d of %d%n", fixture, f.maxRelativeError(), f.meanRelativeError(), f.logitRange(),
                f.topOneAgreement(), f.firstDivergence(), f.newTokens());
        assertThat(f.newTokens()).isEqualTo(64);
        assertThat(f.maxRelativeError()).isGreaterThan(1e-4).isLessThan(maxRel); // quantized, and close
        assertThat(f.meanRelativeError()).isLessThan(meanRel);
        assertThat(f.topOneAgreement()).isGreaterThanOrEqualTo(agreement);
    }
}

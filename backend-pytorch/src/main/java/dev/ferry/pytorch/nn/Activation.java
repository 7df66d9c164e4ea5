package dev.ferry.pytorch.nn;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDScope;
import dev.ferry.pytorch.DjlBackend;
import java.util.Locale;

/**
 * Parameter-free activations under their transformers class names: {@code SiLUActivation},
 * {@code NewGELUActivation} (the tanh form, GPT-2's {@code gelu_new}), {@code GELUTanh} (the same tanh form under
 * the name Gemma's {@code gelu_pytorch_tanh} gets), {@code GELUActivation} (erf form), {@code ReLU}.
 */
public class Activation extends DjlModule {

    public enum Kind { SILU, GELU_NEW, GELU_TANH, GELU, RELU }

    private static final float SQRT_2_OVER_PI = (float) Math.sqrt(2.0 / Math.PI);

    private final Kind kind;

    public Activation(DjlBackend backend, Kind kind) {
        super(switch (kind) {
            case SILU -> "SiLUActivation";
            case GELU_NEW -> "NewGELUActivation";
            case GELU_TANH -> "GELUTanh";
            case GELU -> "GELUActivation";
            case RELU -> "ReLU";
        }, backend);
        this.kind = kind;
    }

    /** The activation named by a config's {@code hidden_act} / {@code activation_function}. */
    public static Activation forName(DjlBackend backend, String name) {
        return new Activation(backend, switch (name.toLowerCase(Locale.ROOT)) {
            case "silu", "swish" -> Kind.SILU;
            case "gelu_new" -> Kind.GELU_NEW;
            case "gelu_pytorch_tanh" -> Kind.GELU_TANH;
            case "gelu" -> Kind.GELU;
            case "relu" -> Kind.RELU;
            default -> throw new IllegalArgumentException("unsupported activation '" + name
                    + "'; supported: silu, swish, gelu_new, gelu_pytorch_tanh, gelu, relu");
        });
    }

    public Kind kind() {
        return kind;
    }

    /** The activation applied to an array of the current scope. */
    public NDArray apply(NDArray x) {
        return switch (kind) {
            case SILU -> x.mul(x.getNDArrayInternal().sigmoid());
            case GELU_NEW, GELU_TANH -> {
                NDArray inner = x.add(x.pow(3).mul(0.044715f)).mul(SQRT_2_OVER_PI);
                yield x.mul(0.5f).mul(inner.tanh().add(1f));
            }
            case GELU -> x.getNDArrayInternal().gelu();
            case RELU -> x.getNDArrayInternal().relu();
        };
    }

    @Override
    protected Object forward(Object... args) {
        NDArray x = array(arg(args, 0, "input"));
        try (NDScope scope = new NDScope()) {
            return output(apply(x));
        }
    }
}

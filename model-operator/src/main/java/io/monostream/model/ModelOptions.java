package io.monostream.model;

/**
 * How {@link MonoInternVL} is loaded and run.
 *
 * @param precision element type of weights, activations and KV cache (spec §6 "Numerics")
 * @param prepackLinears reorder every linear weight once for oneDNN (faster prefill and decode);
 *     off keeps plain weights, for comparison
 * @param fusedAttention attention through {@code aten::scaled_dot_product_attention}; off runs
 *     scores, softmax and P·V as separate ops, for comparison
 */
public record ModelOptions(Precision precision, boolean prepackLinears, boolean fusedAttention) {
    public ModelOptions {
        java.util.Objects.requireNonNull(precision, "precision");
    }

    /** The fast defaults (prepacked linears, fused attention) in {@code precision}. */
    public static ModelOptions of(Precision precision) {
        return new ModelOptions(precision, true, true);
    }
}

/**
 * The bridge to libtorch below DJL (Java FFM over libtorch 2.7's {@code aoti_torch_*} C shim).
 *
 * <p>Why: DJL's own BF16 path aborts the JVM, and some ops the model needs (causal SDPA,
 * prepacked oneDNN linear) are not in DJL's API. DJL still loads libtorch and owns the engine;
 * this package reaches the same library.
 *
 * <ul>
 *   <li>{@link io.monostream.torch.Tensor}: one owned handle; zero-copy tensors over mapped
 *       checkpoint bytes; conversion to and from DJL's {@code PtNDArray}.</li>
 *   <li>{@link io.monostream.torch.Dispatcher}: aten and custom ops by name; the only place that
 *       knows the dispatcher's ownership and boxing rules.</li>
 *   <li>{@link io.monostream.torch.PackedLinear}: BF16/F32 linear layers with weights prepacked
 *       once for oneDNN.</li>
 *   <li>{@link io.monostream.torch.Device}, {@link io.monostream.torch.DType},
 *       {@link io.monostream.torch.TorchThreads}, {@link io.monostream.torch.TorchBridge} (library
 *       handles, CUDA stream).</li>
 * </ul>
 *
 * <p>Every thread that runs tensor work calls {@link io.monostream.torch.TorchThreads#configure}
 * first. JVMs using this package need {@code --enable-native-access=ALL-UNNAMED}.
 */
package io.monostream.torch;

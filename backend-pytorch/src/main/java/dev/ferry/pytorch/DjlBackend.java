package dev.ferry.pytorch;

import ai.djl.engine.Engine;
import ai.djl.engine.StandardCapabilities;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.util.cuda.CudaUtils;
import dev.ferry.core.tensor.CopyStream;
import dev.ferry.core.tensor.DType;
import dev.ferry.core.tensor.DTypeConversion;
import dev.ferry.core.tensor.PageLocking;
import dev.ferry.core.tensor.ParallelCopy;
import dev.ferry.core.tensor.StagingBuffers;
import dev.ferry.core.tensor.Device;
import dev.ferry.core.tensor.TensorBackend;
import dev.ferry.core.tensor.TensorSpec;
import java.lang.management.MemoryUsage;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.OptionalLong;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The core tensor SPI over DJL's PyTorch engine. {@code accelerator(i)} is {@code Device.gpu(i)}, {@code cpu}
 * is {@code Device.cpu()}; {@code disk} is storage only. Every array this backend creates hangs off one root
 * {@link NDManager} (one sub-manager per device), so {@link #liveArrayCount()} sees all native arrays,
 * temporaries of forwards included.
 */
public final class DjlBackend implements TensorBackend, AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(DjlBackend.class);

    public static final String ENGINE = "PyTorch";

    private final Engine engine;
    private final NDManager root;
    private final Map<Device, NDManager> managers = new ConcurrentHashMap<>();
    /**
     * Reused host buffers for converted weights (bf16/fp16 checkpoints into a float32 model) and for bytes on their
     * way to a GPU; page-locked when CUDA is present.
     */
    private final StagingBuffers staging;
    /** How host memory bound for a GPU is page-locked ({@link PageLocking#NONE} without CUDA). */
    private final PageLocking locking;
    /** Idle staging kept between forwards: enough for a few streamed blocks of a large model. */
    static final long STAGING_IDLE_BYTES = 1L << 30;
    private final int gpuCount;
    private final boolean cudaBuilt;
    /** How blocks prepared ahead reach a GPU: on a stream of their own when Ferry's native library is there. */
    private final CopyStream copyStream;
    /** Native resources that are not arrays (a layer's CUDA graphs), freed with the backend before its arrays. */
    private final java.util.Deque<AutoCloseable> owned = new java.util.concurrent.ConcurrentLinkedDeque<>();

    /**
     * Starts DJL's PyTorch engine.
     *
     * @throws dev.ferry.core.load.BackendUnavailableException when no libtorch native library can be found
     */
    public DjlBackend() {
        this.engine = LibTorch.engine(ENGINE);
        this.root = engine.newBaseManager(ai.djl.Device.cpu());
        root.setName("ferry");
        this.cudaBuilt = engine.hasCapability(StandardCapabilities.CUDA);
        this.gpuCount = cudaBuilt ? gpusOf(engine, root) : 0;
        this.locking = gpuCount > 0 ? CudaPageLocking.load() : PageLocking.NONE;
        this.staging = new StagingBuffers(STAGING_IDLE_BYTES, locking);
        boolean streams = gpuCount > 0 && TorchNative.available(engine.getVersion()) && TorchNative.hasCudaStreams()
                && !"off".equalsIgnoreCase(System.getProperty("ferry.copyStream", ""));
        this.copyStream = streams ? new TorchCopyStream() : CopyStream.NONE;
    }

    /**
     * Blocks prepared ahead of the forward are copied to a GPU on a CUDA stream of their own, beside its compute, when
     * Ferry's native library is loaded ({@link TorchNative}; {@code -Dferry.copyStream=off} turns it off); else
     * {@link CopyStream#NONE}: in order with the compute.
     */
    @Override
    public CopyStream copyStream(Device executionDevice) {
        return executionDevice.isAccelerator() && isAvailable(executionDevice) ? copyStream : CopyStream.NONE;
    }

    /**
     * GPUs libtorch can use. DJL counts them through the CUDA runtime it finds by name ({@code libcudart.so}), which a
     * pip-installed torch ships only as {@code libcudart.so.13}; libtorch itself sees the GPUs regardless, so when
     * DJL counts none on a CUDA build, ask libtorch by placing one element on each GPU in turn.
     */
    private static int gpusOf(Engine engine, NDManager root) {
        int counted = engine.getGpuCount();
        if (counted > 0) {
            return counted;
        }
        int n = 0;
        for (; n < 64; n++) {
            try (NDManager m = root.newSubManager(ai.djl.Device.gpu(n))) {
                m.zeros(new Shape(1)).close();
            } catch (RuntimeException | UnsatisfiedLinkError e) {
                break;
            }
        }
        if (n > 0) {
            org.slf4j.LoggerFactory.getLogger(DjlBackend.class).info(
                    "DJL found no CUDA runtime by name, libtorch sees {} GPU(s)", n);
        }
        return n;
    }

    /** Host memory streamed to a GPU is page-locked (CUDA's {@code cudaHostRegister}); to the CPU it is not. */
    @Override
    public PageLocking pageLocking(Device executionDevice) {
        return executionDevice.isAccelerator() && isAvailable(executionDevice) ? locking : PageLocking.NONE;
    }

    @Override
    public String name() {
        return "pytorch";
    }

    // ---- devices ---------------------------------------------------------------------------------------

    public static ai.djl.Device toDjl(Device d) {
        return switch (d.kind()) {
            case ACCELERATOR -> ai.djl.Device.gpu(d.index());
            case CPU -> ai.djl.Device.cpu();
            case DISK -> throw new IllegalArgumentException(
                    "disk is a storage location, not a device a tensor can live on; use an offload store");
        };
    }

    public static Device fromDjl(ai.djl.Device d) {
        if (d.isGpu()) {
            return Device.accelerator(d.getDeviceId());
        }
        if (ai.djl.Device.Type.CPU.equals(d.getDeviceType())) {
            return Device.cpu();
        }
        throw new IllegalArgumentException("DJL device " + d + " has no Ferry equivalent");
    }

    /** Whether libtorch was built with CUDA and sees at least one GPU. */
    public boolean hasCuda() {
        return gpuCount > 0;
    }

    public int gpuCount() {
        return gpuCount;
    }

    /** The accelerators this backend can execute on, then the CPU. */
    public List<Device> devices() {
        List<Device> out = new ArrayList<>();
        for (int i = 0; i < gpuCount; i++) {
            out.add(Device.accelerator(i));
        }
        out.add(Device.cpu());
        return out;
    }

    /** The natural main device: accelerator 0 when CUDA is usable, else the CPU. */
    public Device defaultDevice() {
        return gpuCount > 0 ? Device.accelerator(0) : Device.cpu();
    }

    @Override
    public boolean isAvailable(Device device) {
        return switch (device.kind()) {
            case CPU -> true;
            case DISK -> false;
            case ACCELERATOR -> device.index() < gpuCount;
        };
    }

    /** Throws a clear error (instead of a native crash later) when {@code device} cannot hold tensors. */
    public void requireAvailable(Device device) {
        if (isAvailable(device)) {
            return;
        }
        if (device.kind() == Device.Kind.DISK) {
            throw new IllegalArgumentException(
                    "disk is a storage location, not a device a tensor can live on; use an offload store");
        }
        String why = cudaBuilt ? "CUDA sees " + gpuCount + " GPU(s)"
                : "the loaded libtorch was built without CUDA (pytorch-native-cpu)";
        throw new IllegalStateException("device " + device + " is not available to the PyTorch backend: " + why
                + "; available devices: " + devices());
    }

    @Override
    public OptionalLong freeMemory(Device device) {
        if (!device.isAccelerator() || !isAvailable(device)) {
            return OptionalLong.empty();
        }
        MemoryUsage usage = CudaUtils.getGpuMemory(toDjl(device));
        return OptionalLong.of(usage.getMax() - usage.getCommitted());
    }

    /** The manager owning arrays on {@code device} (a sub-manager of the root). */
    public NDManager manager(Device device) {
        requireAvailable(device);
        return managers.computeIfAbsent(device, d -> root.newSubManager(toDjl(d)));
    }

    // ---- tensors ---------------------------------------------------------------------------------------

    @Override
    public DjlTensor fromBytes(ByteBuffer bytes, TensorSpec spec, Device device) {
        return fromBytes(bytes, spec, device, DjlDTypes.residentDType(spec.dtype()));
    }

    /**
     * Like {@link #fromBytes(ByteBuffer, TensorSpec, Device)} but converted to {@code target} (e.g. a bfloat16
     * or float16 checkpoint into a float32 model). Conversions among float32, float16 and bfloat16 are done in
     * Java ({@link DTypeConversion}) before any byte reaches DJL, so bfloat16 never does. Without a conversion,
     * a direct buffer is used in place on the CPU (zero copy; the tensor keeps it reachable) and a heap buffer
     * is copied once.
     */
    @Override
    public DjlTensor fromBytes(ByteBuffer bytes, TensorSpec spec, Device device, DType target) {
        return fromBytes(bytes, spec, device, target, true);
    }

    /**
     * {@code bytesOutliveCall}: the caller keeps {@code bytes} as they are after this returns (a store's own memory),
     * so a copy to a GPU may still be in flight when it does; false for a buffer that goes back to a pool at once.
     */
    private DjlTensor fromBytes(ByteBuffer bytes, TensorSpec spec, Device device, DType target,
                                boolean bytesOutliveCall) {
        requireAvailable(device);
        if (bytes.remaining() != spec.byteSize()) {
            throw new IllegalArgumentException("tensor " + spec + " needs " + spec.byteSize() + " bytes, got "
                    + bytes.remaining());
        }
        if (spec.elementCount() > Integer.MAX_VALUE || spec.byteSize() > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("tensor " + spec + " is larger than DJL's 2 GiB per-array limit");
        }
        DataType targetType = DjlDTypes.toDjl(target); // rejects bf16, int16, float8 targets before any create
        if (device.isAccelerator() && spec.dtype() == DType.BFLOAT16 && target.isFloatingPoint()) {
            return bf16OnDevice(bytes, spec, device, targetType);
        }
        ByteBuffer data;
        DType created;
        boolean staged = false;
        if (spec.dtype() != target && DTypeConversion.supports(spec.dtype(), target)) {
            ByteBuffer buffer = staging.acquire(DTypeConversion.convertedSize(bytes, spec.dtype(), target));
            data = DTypeConversion.convertInto(bytes, spec.dtype(), target, buffer).order(ByteOrder.nativeOrder());
            created = target;
            staged = true;
        } else {
            created = DjlDTypes.residentDType(spec.dtype()); // rejects what DJL cannot hold
            ByteBuffer s = bytes.slice();
            if (device.isAccelerator() && !locking.isLocked(s) && locking != PageLocking.NONE) {
                // bound for a GPU from pageable memory (a mapped checkpoint or offload folder): copy into a locked
                // staging buffer on all cores, so the upload runs at the link's speed
                data = staging.acquire(s.remaining());
                ParallelCopy.copy(s, data);
                data.order(ByteOrder.nativeOrder());
                staged = true;
            } else if (s.isDirect()) {
                data = s.order(ByteOrder.nativeOrder());
            } else {
                data = ByteBuffer.allocateDirect(s.remaining()).order(ByteOrder.nativeOrder());
                data.put(s).flip();
            }
        }
        if (bytesOutliveCall && !staged && created == target && copyStream instanceof TorchCopyStream streams
                && streams.copiesAsync(device)) {
            // a block prepared ahead from memory that outlives it (a locked offload buffer, never a staging buffer
            // that goes back to the pool at once): queued on the copy stream, awaited once per block by complete()
            try (NDArray host = manager(Device.cpu()).create(data, new Shape(spec.shape()), DjlDTypes.toDjl(created))) {
                NDArray a = TorchNative.toDeviceAsync(host, manager(device), device.index());
                NDScope.unregister(a);
                return new DjlTensor(this, a, null, false);
            }
        }
        NDArray a = manager(device).create(data, new Shape(spec.shape()), DjlDTypes.toDjl(created));
        NDScope.unregister(a);
        if (created != target) {
            NDArray converted = a.toType(targetType, true);
            a.close();
            return wrap(converted);
        }
        if (device.isAccelerator()) {
            if (staged) {
                staging.release(data); // copied to the device: the host buffer is free again
            }
            return new DjlTensor(this, a, null, false);
        }
        return new DjlTensor(this, a, data, staged); // a CPU array uses the buffer in place until closed
    }

    /**
     * Bytes {@code fill} writes into one of this backend's reused staging buffers (page-locked when CUDA is present),
     * then made a tensor: on the CPU without conversion the array uses the buffer in place and gives it back to the
     * pool when closed; otherwise the buffer goes back as soon as the tensor is made (copied to the GPU, or
     * converted into another staging buffer). Once warm, streaming a block allocates nothing.
     */
    @Override
    public DjlTensor fromFilled(TensorSpec spec, Device device, DType target, Consumer<ByteBuffer> fill) {
        requireAvailable(device);
        if (spec.elementCount() > Integer.MAX_VALUE || spec.byteSize() > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("tensor " + spec + " is larger than DJL's 2 GiB per-array limit");
        }
        DjlDTypes.toDjl(target); // rejects bf16, int16, float8 targets before any byte is read
        ByteBuffer buffer = staging.acquire((int) spec.byteSize());
        boolean kept = false;
        try {
            fill.accept(buffer);
            buffer.flip();
            if (device.kind() == Device.Kind.CPU && spec.dtype() == target
                    && DjlDTypes.residentDType(spec.dtype()) == target) {
                NDArray a = manager(device).create(buffer.order(ByteOrder.nativeOrder()), new Shape(spec.shape()),
                        DjlDTypes.toDjl(target));
                NDScope.unregister(a);
                kept = true;
                return new DjlTensor(this, a, buffer, true);
            }
            return fromBytes(buffer, spec, device, target, false); // the buffer goes back to the pool below
        } finally {
            if (!kept) {
                staging.release(buffer);
            }
        }
    }

    /**
     * A bfloat16 tensor made on {@code device} from its raw bytes, converted there: DJL 0.36 cannot hold bfloat16
     * (creating one aborts the process), so the bytes go up as uint8 and the GPU rebuilds each value from its sign,
     * exponent and mantissa bits. Exact (every bfloat16 is a float32), and no CPU-side conversion per forward.
     */
    DjlTensor bf16OnDevice(ByteBuffer bytes, TensorSpec spec, Device device, DataType target) {
        TensorSpec raw = new TensorSpec(new long[] {spec.elementCount(), 2}, DType.UINT8);
        try (DjlTensor u8 = fromBytes(bytes, raw, device, DType.UINT8); NDScope scope = new NDScope()) {
            NDArray b = u8.array().toType(DataType.FLOAT32, false);
            NDArray lo = b.get(":, 0");
            NDArray hi = b.get(":, 1");
            NDArray sign = hi.div(128f).floor();                     // bit 15
            NDArray hiRest = hi.sub(sign.mul(128f));                  // bits 8..14: exponent's high 7 bits
            NDArray loTop = lo.div(128f).floor();                     // bit 7: exponent's low bit
            NDArray exponent = hiRest.mul(2f).add(loTop);
            NDArray mantissa = lo.sub(loTop.mul(128f));               // bits 0..6
            NDArray normal = exponent.gt(0f).toType(DataType.FLOAT32, false);
            NDArray two = u8.array().getManager().create(2f);
            // normal: 2^(e-127) * (1 + m/128); subnormal (e = 0): 2^-126 * m/128
            NDArray scale = two.pow(exponent.sub(127f).mul(normal).add(normal.neg().add(1f).mul(-126f)));
            NDArray significand = mantissa.div(128f).add(normal);
            NDArray value = scale.mul(significand).mul(sign.mul(-2f).add(1f))
                    .reshape(new Shape(spec.shape())).toType(target, false);
            NDScope.unregister(value);
            return wrap(value);
        }
    }

    /** The staging pool (for tests and benchmarks: how many buffers were made and reused). */
    public StagingBuffers staging() {
        return staging;
    }

    /** A copy of {@code array} on {@code device}, owned by the caller. */
    DjlTensor transfer(NDArray array, Device device) {
        requireAvailable(device);
        NDArray moved = array.toDevice(toDjl(device), true);
        moved.attach(manager(device));
        return wrap(moved);
    }

    /** Wraps an array computed by a layer, taking it out of the innermost scope: the caller owns the result. */
    public DjlTensor wrap(NDArray array) {
        NDScope.unregister(array);
        return new DjlTensor(this, array, null);
    }

    /** Wraps a temporary of the innermost scope without taking it out: the scope still frees it. */
    public DjlTensor scoped(NDArray array) {
        return new DjlTensor(this, array, null);
    }

    /** An int64 tensor {@code [1, ids.length]} of token ids. */
    public DjlTensor tokens(long[] ids, Device device) {
        return wrap(manager(device).create(ids, new Shape(1, ids.length)));
    }

    /** A float32 tensor of {@code values} with {@code shape}. */
    public DjlTensor floats(float[] values, Device device, long... shape) {
        return wrap(manager(device).create(values, new Shape(shape)));
    }

    /** Number of native arrays alive under this backend (weights, caches, outputs and leaked temporaries). */
    public int liveArrayCount() {
        return root.getManagedArrays().size();
    }

    /**
     * Makes this backend the owner of {@code resource}, a native resource that is not an array (a layer's CUDA
     * graphs): {@link #close()} closes it, the latest first, before the arrays it may read.
     */
    public void own(AutoCloseable resource) {
        owned.push(resource);
    }

    /** Frees every array this backend created and every resource it was given to {@link #own}. */
    @Override
    public void close() {
        for (AutoCloseable r; (r = owned.poll()) != null; ) {
            try {
                r.close();
            } catch (Exception e) {
                LOG.warn("closing {} failed: {}", r, e.toString());
            }
        }
        root.close();
        staging.close();
    }

    @Override
    public String toString() {
        return "DjlBackend(PyTorch " + engine.getVersion() + ", devices " + devices() + ")";
    }
}

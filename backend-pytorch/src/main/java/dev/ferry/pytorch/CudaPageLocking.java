package dev.ferry.pytorch;

import com.sun.jna.Function;
import com.sun.jna.Native;
import com.sun.jna.NativeLibrary;
import com.sun.jna.Pointer;
import dev.ferry.core.tensor.PageLocking;
import java.nio.ByteBuffer;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.atomic.AtomicBoolean;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Page-locks direct buffers with CUDA's {@code cudaHostRegister} (through JNA, which DJL already ships), so that
 * libtorch's host-to-device copies from them run at the link's speed: measured on an H200 through DJL, 51.3 GB/s
 * from a registered buffer against 5.8 GB/s from the same buffer unregistered. Registered as portable, so every
 * GPU of the process sees the memory as locked. Where registration fails (no CUDA runtime, the locked-memory
 * limit) it logs once and reports the buffer as not locked: the copy is then slower, never wrong.
 */
final class CudaPageLocking implements PageLocking {

    private static final Logger LOG = LoggerFactory.getLogger(CudaPageLocking.class);
    private static final int PORTABLE = 1; // cudaHostRegisterPortable

    private final Function register;
    private final Function unregister;
    /** Locked regions: address → length, never overlapping (buffers are page-aligned, see {@link #allocate}). */
    private final TreeMap<Long, Long> locked = new TreeMap<>();
    private final AtomicBoolean warned = new AtomicBoolean();
    private long lockedBytes;

    private CudaPageLocking(NativeLibrary cudart) {
        this.register = cudart.getFunction("cudaHostRegister");
        this.unregister = cudart.getFunction("cudaHostUnregister");
    }

    /** The CUDA runtime's page locking, or {@link PageLocking#NONE} (logged) when the runtime cannot be loaded. */
    static PageLocking load() {
        try {
            return new CudaPageLocking(NativeLibrary.getInstance("cudart"));
        } catch (LinkageError e) { // no libcudart, or a JNA that cannot load it
            LOG.warn("CUDA runtime (libcudart) not found: host memory streamed to the GPU stays pageable, at a "
                    + "fraction of the link's speed; put CUDA's lib folder on LD_LIBRARY_PATH ({})", e.getMessage());
            return NONE;
        }
    }

    private static long address(ByteBuffer buffer) {
        return Pointer.nativeValue(Native.getDirectBufferPointer(buffer));
    }

    @Override
    public boolean lock(ByteBuffer buffer) {
        if (!buffer.isDirect() || buffer.capacity() == 0) {
            return false;
        }
        long addr = address(buffer);
        long len = buffer.capacity();
        synchronized (this) {
            if (covered(addr, len)) {
                return true;
            }
            int rc = register.invokeInt(new Object[] {new Pointer(addr), len, PORTABLE});
            if (rc != 0) {
                if (warned.compareAndSet(false, true)) {
                    LOG.warn("cudaHostRegister of {} bytes failed with CUDA error {} (locked so far: {} bytes): "
                            + "buffers that cannot be locked stay pageable, streamed at a fraction of the link's "
                            + "speed (check `ulimit -l`)", len, rc, lockedBytes);
                }
                return false;
            }
            locked.put(addr, len);
            lockedBytes += len;
            return true;
        }
    }

    @Override
    public void unlock(ByteBuffer buffer) {
        if (!buffer.isDirect() || buffer.capacity() == 0) {
            return;
        }
        long addr = address(buffer);
        synchronized (this) {
            Long len = locked.remove(addr);
            if (len == null) {
                return;
            }
            lockedBytes -= len;
            int rc = unregister.invokeInt(new Object[] {new Pointer(addr)});
            if (rc != 0) {
                LOG.warn("cudaHostUnregister of {} bytes failed with CUDA error {}", len, rc);
            }
        }
    }

    @Override
    public boolean isLocked(ByteBuffer buffer) {
        if (!buffer.isDirect()) {
            return false;
        }
        long addr = address(buffer) + buffer.position();
        synchronized (this) {
            return covered(addr, buffer.remaining());
        }
    }

    private boolean covered(long addr, long len) {
        Map.Entry<Long, Long> e = locked.floorEntry(addr);
        return e != null && addr + len <= e.getKey() + e.getValue();
    }

    @Override
    public synchronized long lockedBytes() {
        return lockedBytes;
    }

    @Override
    public String toString() {
        return "CudaPageLocking(" + lockedBytes() + " bytes locked)";
    }
}
